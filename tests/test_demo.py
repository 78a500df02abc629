"""``pcsync demo``: the same story whatever the day it runs, as the README shows it, and
the commands it prints next work (``--serve`` keeping the simulator up for ``sync``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from sync.cli import main
from sync.cli.demo import DEMO_SECRET_ENV, demo_day


def test_the_demo_stands_on_a_day_whose_newest_invoice_is_out() -> None:
    assert demo_day(date(2026, 12, 28)) == date(2026, 12, 28)
    assert demo_day(date(2026, 12, 6)) == date(2026, 12, 6)
    assert demo_day(date(2026, 12, 1)) == date(2026, 11, 30)  # November's invoice: the 5th
    assert demo_day(date(2027, 1, 5)) == date(2026, 12, 31)


def _finding_kinds(
    folder: Path, today: str, capsys: pytest.CaptureFixture[str]
) -> tuple[set[str], str]:
    assert main(["demo", "--dir", str(folder), "--today", today]) == 0
    printed = capsys.readouterr().out
    as_of = demo_day(date.fromisoformat(today)).isoformat()
    config = str(folder / "pcsync.toml")
    assert main(["--config", config, "reconcile", "--as-of", as_of, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    _statements_equal_the_reconciliation(folder, as_of, document["customers"], capsys)
    return {finding["kind"] for finding in document["findings"]}, printed


def _statements_equal_the_reconciliation(
    folder: Path,
    as_of: str,
    customers: list[dict],
    capsys: pytest.CaptureFixture[str],  # type: ignore[type-arg]
) -> None:
    """Every demo customer with a balance: its statement has the reconciliation's figures."""
    out = folder / "all-statements"
    config = str(folder / "pcsync.toml")
    args = ["statement", "--all", "--as-of", as_of, "--format", "json", "--out", str(out)]
    assert main(["--config", config, *args]) == 0
    capsys.readouterr()
    owing = [row for row in customers if Decimal(row["balance"]) != 0]
    assert owing
    for row in owing:
        stem = f"statement-{row['customer_id']}-{row['currency']}-{as_of}"
        document = json.loads((out / f"{stem}.json").read_text())
        for key in ("balance", "overdue_amount", "days_overdue", "aging", "charged", "paid"):
            assert document[key] == row[key], (row["customer_id"], key)
        assert document["credit"] == row["unapplied_credit"]
    assert len(list(out.glob("*.json"))) == len(owing)


def _readme_demo_output() -> str:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index("What `make demo` printed") :]
    return after.split("```\n", 2)[1]


def _masked(text: str) -> str:
    # The port is the system's choice; the schema version moves with every migration.
    text = re.sub(r"https://127\.0\.0\.1:\d+", "https://127.0.0.1:PORT", text)
    return re.sub(r"\(schema \d+\)", "(schema N)", text)


def test_the_demo_shows_the_same_finding_kinds_on_the_1st_and_the_28th(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo hands its simulator's secret and CA to the process: undone after the test.
    monkeypatch.setenv(DEMO_SECRET_ENV, "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    for name in ("first", "late"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "first")  # the demo prints paths as typed: demo/…
    first, printed = _finding_kinds(Path("demo"), "2026-12-01", capsys)
    monkeypatch.chdir(tmp_path / "late")
    late, _ = _finding_kinds(Path("demo"), "2026-12-28", capsys)
    assert first == late
    assert {"duplicate_line", "seat_mismatch", "unknown_subscription"} <= first
    assert "reconcile: as of 2026-11-30" in printed
    assert _masked(printed) == _masked(_readme_demo_output())
    demo = tmp_path / "first" / "demo"
    assert list((demo / "statements").glob("statement-*-2026-11-30.html"))
    policy = (demo / "collections-policy.html").read_text(encoding="utf-8")
    assert "Contoso Accounts" in policy


def test_the_commands_printed_next_work_against_demo_serve(tmp_path: Path) -> None:
    """``pcsync demo --serve`` says what ``sync`` needs; with exactly that, ``sync`` works."""
    env = {k: v for k, v in os.environ.items() if k not in (DEMO_SECRET_ENV, "REQUESTS_CA_BUNDLE")}
    env["PYTHONUNBUFFERED"] = "1"
    cli = [sys.executable, "-m", "sync.cli"]
    demo = subprocess.Popen(
        [*cli, "demo", "--dir", "demo", "--today", "2026-12-01", "--serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        printed: list[str] = []  # from the "serving:" line to the sync command
        while not printed or not printed[-1].startswith("  pcsync --config"):
            line = demo.stdout.readline()
            assert line, "the demo ended before saying how to sync"
            if printed or line.startswith("serving:"):
                printed.append(line.rstrip("\n"))
        exports = dict(
            line.split("export ", 1)[1].split("=", 1) for line in printed if "export " in line
        )
        assert set(exports) == {DEMO_SECRET_ENV, "REQUESTS_CA_BUNDLE"}
        command = shlex.split(printed[-1])
        assert command[:3] == ["pcsync", "--config", "demo/pcsync.toml"]
        synced = subprocess.run(
            [*cli, *command[1:]],
            cwd=tmp_path,
            env={**env, **exports},
            capture_output=True,
            text=True,
            check=False,
        )
        assert synced.returncode == 0, synced.stderr[-2000:]
        assert "succeeded" in synced.stdout
    finally:
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0
    assert "simulator stopped" in rest
