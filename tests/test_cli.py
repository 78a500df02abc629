"""The command line: exit codes, one-line errors, init and runs, no secrets in output."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from sync.cli import main
from sync.db.migrate import HEAD
from tests.world import AS_OF

SECRET = "Sup3r-Secret-Value-0123456789"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_schema_then_is_a_no_op(write_config, db_url: str, capsys) -> None:
    path = write_config(db_url=db_url)
    code, out, _ = run(capsys, "--config", str(path), "init")
    assert code == 0
    assert f"schema empty -> {HEAD}" in out
    code, out, _ = run(capsys, "--config", str(path), "init")
    assert code == 0
    assert f"schema {HEAD} is current, nothing to do" in out


def test_runs_lists_init_runs_as_json(write_config, db_url: str, capsys) -> None:
    path = write_config(db_url=db_url)
    run(capsys, "--config", str(path), "init")
    run(capsys, "--config", str(path), "init")
    code, out, _ = run(capsys, "--config", str(path), "runs", "--json")
    assert code == 0
    runs = json.loads(out)["runs"]
    assert [(r["kind"], r["status"], r["trigger"]) for r in runs] == [
        ("init", "succeeded", "manual"),
        ("init", "succeeded", "manual"),
    ]
    assert runs[0]["counts"] == {"schema": {"unchanged": 1}}
    assert runs[1]["counts"] == {"schema": {"upgraded": 1}}
    assert runs[0]["finished_at"] >= runs[0]["started_at"]


def test_runs_table_on_a_fresh_database(write_config, db_url: str, capsys) -> None:
    path = write_config(db_url=db_url)
    run(capsys, "--config", str(path), "init")
    code, out, _ = run(capsys, "--config", str(path), "runs")
    assert code == 0
    assert "init" in out
    assert "succeeded" in out


def test_runs_before_init_says_what_to_do(write_config, db_url: str, capsys) -> None:
    code, out, err = run(capsys, "--config", str(write_config(db_url=db_url)), "runs")
    assert code == 1
    assert out == ""
    assert err.strip().endswith("run `pcsync init`")
    assert len(err.strip().splitlines()) == 1


def test_missing_config_is_exit_2_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "absent.toml"), "runs")
    assert code == 2
    assert err.startswith("pcsync: error: config file ")
    assert "absent.toml not found" in err
    assert len(err.strip().splitlines()) == 1


def test_config_from_environment_variable(write_config, db_url, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PCSYNC_CONFIG", str(write_config(db_url=db_url)))
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert f"schema empty -> {HEAD}" in out


def test_bad_config_lists_each_problem_and_exits_2(write_config, capsys) -> None:
    path = write_config("[billing]\nmarkup_percent = 10.5\n[bogus]\n")
    code, _, err = run(capsys, "--config", str(path), "init")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [
        f"pcsync: error: config file {path}: [billing] markup_percent: expected a decimal "
        'string like "10", got 10.5',
        f"pcsync: error: config file {path}: [bogus]: unknown section (see config.example.toml)",
    ]


def test_usage_error_exits_2(capsys) -> None:
    code, _, err = run(capsys, "no-such-command")
    assert code == 2
    assert "No such command" in err


def test_unreachable_database_exits_1_without_the_password(write_config, capsys) -> None:
    path = write_config(db_url=f"postgresql+psycopg://pcsync:{SECRET}@127.0.0.1:1/pcsync")
    code, _, err = run(capsys, "--config", str(path), "init")
    assert code == 1
    assert err.startswith("pcsync: error: cannot open database postgresql+psycopg://pcsync:***@")
    assert SECRET not in err
    assert len(err.strip().splitlines()) == 1


def test_verbose_adds_the_traceback_but_not_the_secret(write_config, capsys) -> None:
    path = write_config(db_url=f"postgresql+psycopg://pcsync:{SECRET}@127.0.0.1:1/pcsync")
    code, _, err = run(capsys, "-v", "--config", str(path), "init")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert SECRET not in err


def test_secret_from_env_never_reaches_logs(write_config, db_url, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", SECRET)
    path = write_config(db_url=db_url)
    code, out, err = run(capsys, "-vv", "--config", str(path), "init")
    assert code == 0
    assert "credential client secret from $PCSYNC_CLIENT_SECRET" in out
    # Anything that logs the secret later (a library, a careless message) is masked.
    logging.getLogger("connectors.partner_center.auth").warning("token call failed for %s", SECRET)
    _, err2 = capsys.readouterr()
    assert SECRET not in out + err + err2
    assert "token call failed for ***" in err2


def test_json_log_format_writes_json_lines(write_config, db_url, capsys) -> None:
    path = write_config(db_url=db_url)
    code, _, err = run(capsys, "--log-format", "json", "--config", str(path), "init")
    assert code == 0
    entries = [json.loads(line) for line in err.strip().splitlines()]
    assert any(e["message"].startswith("init run") for e in entries)
    assert {"time", "level", "logger", "message"} <= set(entries[0])


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """The installed entry point really exits with the codes (no traceback)."""
    result = subprocess.run(
        [sys.executable, "-m", "sync.cli", "--config", str(tmp_path / "x.toml"), "runs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("pcsync: error: config file")


def test_approve_by_unique_name_and_a_near_miss_suggests(world, capsys) -> None:  # type: ignore[no-untyped-def]
    name = next(c["companyProfile"]["companyName"] for c in world.sim.data.customers
                if c["id"] == world.never)  # fmt: skip
    assert world.cli("collections", "approve", name.upper(), "--as-of", AS_OF, "--by", "ana") == 0
    assert f"approved suspending {name} ({world.never})" in capsys.readouterr().out
    near_miss = name[:-1]  # one letter short
    hold = ("collections", "hold", near_miss, "--until", "2099-01-01", "--reason", "x")
    for command in (
        ("collections", "approve", near_miss, "--as-of", AS_OF),
        hold,
        ("statement", near_miss, "--out", str(world.tmp / "statements")),
        ("payments", "list", "--customer", near_miss),
        ("audit", "--customer", near_miss),
    ):
        assert world.cli(*command) == 2, command
        err = capsys.readouterr().err
        assert f"unknown customer {near_miss!r}; did you mean {name!r}" in err, command
        assert len(err.strip().splitlines()) == 1


def test_piped_runs_and_audit_print_every_count_and_name_whole(world, capsys) -> None:  # type: ignore[no-untyped-def]
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF, "--by", "ana") == 0
    capsys.readouterr()
    assert world.cli("runs") == 0  # capsys: stdout is not a terminal
    out = capsys.readouterr().out
    assert world.cli("runs", "--json") == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    for view in runs:
        line = next(line for line in out.splitlines() if line.split()[:1] == [str(view["id"])])
        for numbers in view["counts"].values():
            for key, value in numbers.items():
                assert f"{key}={value}" in line  # on the run's own line, uncut
    assert "…" not in out
    assert world.cli("audit") == 0
    out = capsys.readouterr().out
    name = next(c["companyProfile"]["companyName"] for c in world.sim.data.customers
                if c["id"] == world.never)  # fmt: skip
    assert any(f"{name} ({world.never})" in line for line in out.splitlines())
    assert "…" not in out


def test_sync_json_prints_the_run_with_its_counts(world, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert world.cli("sync", "--only", "customers", "--json") == 0
    run = json.loads(capsys.readouterr().out)["run"]
    assert run["kind"] == "sync"
    assert run["status"] == "succeeded"
    assert run["counts"]["customers"]


def test_on_a_narrow_terminal_tables_wrap_instead_of_cutting(world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import re
    import sys

    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert world.cli("runs") == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # the terminal's colours
    lines = out.splitlines()
    assert lines
    assert all(len(line) <= 100 for line in lines)
    assert any(line.split("│")[1:2] == [" 1  "] for line in lines)  # a short cell stays whole
    assert "…" not in out  # wrapped and folded, never an ellipsis


def test_sync_progress_counts_invoices_n_of_m_and_ends_on_the_summary(  # type: ignore[no-untyped-def]
    world, capsys, monkeypatch
) -> None:
    import sys

    from sync.cli import progress

    seen: list[tuple[int, int | None, int]] = []
    real = progress._Bar.invoice_done

    def done(self) -> None:  # type: ignore[no-untyped-def]
        real(self)
        seen.append((self.counts.invoices, self.counts.total, self.counts.lines))

    monkeypatch.setattr(progress._Bar, "invoice_done", done)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    capsys.readouterr()
    assert world.cli("sync", "--full", "--only", "invoices,lineitems") == 0
    out = capsys.readouterr().out
    total = seen[-1][1]
    assert total
    assert [n for n, _, _ in seen] == list(range(1, total + 1))  # invoices 1 of M … M of M
    assert all(m == total for _, m, _ in seen)
    assert world.cli("runs", "--json") == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert seen[-1][2] == run["counts"]["lineitems"]["fetched"]  # every line counted
    assert out.strip().splitlines()[-1].startswith(f"sync run {run['id']} succeeded: ")
