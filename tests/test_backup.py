"""`pcsync backup`: SQLite copies pcsync can open, taken beside a running sync; pg_dump."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.simulator.data import Scale
from sync.cli import main
from sync.runtime.backup import pg_dump_command
from tests.test_concurrency import _IN_SECOND_INVOICE, _cli, _wait_for
from tests.test_sync import setup


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sqlite_config(write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A config on a SQLite database with a schema and two runs in its history."""
    config = write_config(db_url=f"sqlite:///{tmp_path / 'data' / 'pcsync.db'}")
    for _ in range(2):
        assert run(capsys, "--config", str(config), "init")[0] == 0
    return config


def _config_on(tmp_path: Path, database: Path) -> Path:
    """A second config whose database is ``database`` (a backup, as an admin would open it)."""
    from tests.conftest import MINIMAL_CONFIG

    path = tmp_path / "restored.toml"
    path.write_text(MINIMAL_CONFIG + f'\n[database]\nurl = "sqlite:///{database}"\n')
    return path


def test_a_sqlite_backup_is_one_file_pcsync_runs_can_open(
    sqlite_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "backups" / "pcsync-backup.db"
    target.parent.mkdir()
    code, out, err = run(capsys, "--config", str(sqlite_config), "backup", str(target))
    assert code == 0, err
    assert out.startswith("backup of sqlite:///")
    assert f"written to {target}" in out
    assert sorted(p.name for p in target.parent.iterdir()) == ["pcsync-backup.db"]  # no -wal
    assert target.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    copy.close()

    original = run(capsys, "--config", str(sqlite_config), "runs", "--json")[1]
    code, restored, err = run(
        capsys, "--config", str(_config_on(tmp_path, target)), "runs", "--json"
    )
    assert code == 0, err
    assert json.loads(restored) == json.loads(original)
    assert [r["kind"] for r in json.loads(restored)["runs"]] == ["init", "init"]


def test_backup_keeps_an_existing_file_unless_forced(
    sqlite_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "backup.db"
    target.write_text("yesterday's backup")
    code, out, err = run(capsys, "--config", str(sqlite_config), "backup", str(target))
    assert code == 2
    assert out == ""
    assert err == (
        f"pcsync: error: {target} exists: choose another name, or pass --force to replace it\n"
    )
    assert target.read_text() == "yesterday's backup"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    code, _, err = run(capsys, "--config", str(sqlite_config), "backup", "--force", str(target))
    assert code == 0, err
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    copy.close()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing/backup.db", "missing does not exist: create the folder first"),
        (".", "is a folder: give the backup's file name"),
        ("data/pcsync.db", "pcsync.db is the database itself: give another file name"),
    ],
)
def test_backup_refuses_a_bad_target_in_one_line(
    sqlite_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    message: str,
) -> None:
    code, _, err = run(capsys, "--config", str(sqlite_config), "backup", str(tmp_path / target))
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("pcsync: error: ")
    assert message in err


def test_backup_of_a_missing_database_says_what_to_do(
    write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(db_url=f"sqlite:///{tmp_path / 'none.db'}")
    code, _, err = run(capsys, "--config", str(config), "backup", str(tmp_path / "b.db"))
    assert code == 1
    assert err == (
        f"pcsync: error: no database at {tmp_path / 'none.db'}: check [database] url,"
        " or run `pcsync init`\n"
    )
    assert not (tmp_path / "none.db").exists()


def test_a_backup_taken_while_a_sync_writes_holds_whole_invoices_only(
    start_simulator, tmp_path: Path
) -> None:
    """The sync is paused in the middle of its second invoice, its transaction open."""
    sim = start_simulator(scale=Scale(customers=3, invoices=3, lines_per_invoice=4000))
    settings, engine, _ = setup(sim, f"sqlite:///{tmp_path / 'pcsync.db'}", tmp_path)
    engine.dispose()
    env = {**os.environ, "PCSYNC_CLIENT_SECRET": sim.config.client_secret}
    pause = tmp_path / "failpoint"
    pause.mkdir()
    target = tmp_path / "during-sync.db"
    sync = subprocess.Popen(
        _cli(settings.source, "sync"),
        env={**env, "PCSYNC_FAILPOINT": f"lines.batch:{_IN_SECOND_INVOICE}=pause:{pause}"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(pause / "paused", sync)
        backup = subprocess.run(
            _cli(settings.source, "backup", str(target)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert backup.returncode == 0, backup.stderr
        assert sync.poll() is None  # the sync waits at its pause, untouched
    finally:
        (pause / "resume").touch()
        _, sync_err = sync.communicate(timeout=300)
    assert sync.returncode == 0, sync_err

    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # the first invoice, committed before the pause; none of the second's lines
        assert copy.execute("SELECT count(*) FROM invoice_line_items").fetchone()[0] == 4000
        assert copy.execute("SELECT kind, status FROM runs").fetchall() == [("sync", "running")]
    finally:
        copy.close()
    live = sa.create_engine(f"sqlite:///{tmp_path / 'pcsync.db'}")
    with live.connect() as c:
        expected = sum(sim.data.line_count(invoice) for invoice in sim.data.invoices)
        assert c.scalar(sa.text("SELECT count(*) FROM invoice_line_items")) == expected
    live.dispose()


def test_pg_dump_command_names_host_port_user_schema_and_database_never_the_password() -> None:
    url = (
        "postgresql+psycopg://pcsync:s3cret-pw@db.example.com:5433/billing"
        "?options=-csearch_path%3Dpcsync_prod"
    )
    dump = pg_dump_command(url, Path("/var/backups/pcsync.dump"))
    assert dump.command == (
        "pg_dump --format=custom --file=/var/backups/pcsync.dump --host=db.example.com"
        " --port=5433 --username=pcsync --schema=pcsync_prod billing"
    )
    assert dump.restore == (
        "pg_restore --clean --if-exists --no-owner --host=db.example.com --port=5433"
        " --username=pcsync --dbname=billing /var/backups/pcsync.dump"
    )
    assert dump.password == "s3cret-pw"
    assert "s3cret" not in repr(dump)
    assert "s3cret" not in dump.shown_url


def test_backup_on_postgresql_prints_the_pg_dump_command_and_does_nothing(
    write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(db_url="postgresql+psycopg://pcsync:s3cret-pw@db.example.com/billing")
    target = tmp_path / "pcsync.dump"
    code, out, err = run(capsys, "--config", str(config), "backup", str(target))
    assert (code, err) == (0, "")
    assert f"  pg_dump --format=custom --file={target} --host=db.example.com" in out
    assert " --username=pcsync billing\n" in out
    assert "  pg_restore --clean --if-exists --no-owner" in out
    assert "s3cret" not in out
    assert not target.exists()


@pytest.mark.skipif(
    shutil.which("pg_dump") is None and os.environ.get("CI") != "true",
    reason="pg_dump is not installed",
)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_backup_run_on_postgresql_writes_a_dump_pg_restore_reads(
    db_url: str, write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(db_url=db_url)
    assert run(capsys, "--config", str(config), "init")[0] == 0
    target = tmp_path / "pcsync.dump"
    code, out, err = run(capsys, "--config", str(config), "backup", "--run", str(target))
    assert code == 0, err
    assert f"written to {target} by pg_dump" in out
    assert target.stat().st_mode & 0o777 == 0o600
    listing = subprocess.run(
        ["pg_restore", "--list", str(target)], capture_output=True, text=True, check=True
    ).stdout
    schema = db_url.rsplit("%3D", 1)[1]
    assert f"TABLE DATA {schema} runs" in listing
    assert f"TABLE DATA {schema} invoice_line_items" in listing
    assert "TABLE DATA public" not in listing  # only pcsync's schema

    code, _, err = run(capsys, "--config", str(config), "backup", "--run", str(target))
    assert code == 2
    assert "exists: choose another name, or pass --force" in err


@pytest.mark.skipif(
    shutil.which("pg_dump") is None and os.environ.get("CI") != "true",
    reason="pg_dump is not installed",
)
def test_backup_run_reports_pg_dump_failing_in_one_line(
    write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(db_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = run(capsys, "--config", str(config), "backup", "--run", str(tmp_path / "d"))
    assert code == 1
    assert err.startswith("pcsync: error: pg_dump failed: ")
    assert err.count("\n") == 1
    assert not list(tmp_path.glob("*d*"))
