"""``pcsync demo``: the same story whatever the day it runs."""

from __future__ import annotations

import json
from datetime import date
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
    return {finding["kind"] for finding in document["findings"]}, printed


def test_the_demo_shows_the_same_finding_kinds_on_the_1st_and_the_28th(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo hands its simulator's secret and CA to the process: undone after the test.
    monkeypatch.setenv(DEMO_SECRET_ENV, "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    first, printed = _finding_kinds(tmp_path / "first", "2026-12-01", capsys)
    late, _ = _finding_kinds(tmp_path / "late", "2026-12-28", capsys)
    assert first == late
    assert {"duplicate_line", "seat_mismatch", "unknown_subscription"} <= first
    assert "reconcile: as of 2026-11-30" in printed
