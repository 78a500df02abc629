"""A second process against a sync in progress: nothing is lost, nothing is corrupted.

The first sync is paused by a failpoint in the middle of an invoice's write,
after earlier invoices were committed; everything else runs beside it then.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.simulator.data import Scale
from sync.lines.rows import LINE_BATCH
from tests.test_sync import setup

# The 4th batch of the second invoice (invoices of 4000 lines): the first one is committed.
_IN_SECOND_INVOICE = 4000 // LINE_BATCH + 4


def _cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sync.cli", "--config", str(config), *args]


def _wait_for(path: Path, process: subprocess.Popen[Any], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the first sync ended before reaching its pause"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _read_and_close(engine: sa.Engine) -> int:
    """What another program does (a finance tool, a script): open, read, close cleanly.

    On SQLite the last connection to close checkpoints and deletes the write-ahead
    log if it can lock the database exclusively, which it can only when the sync
    has (wrongly) lost its locks.
    """
    if engine.dialect.name == "sqlite":
        engine.dispose()  # this process holds no connection: the reader is the only other one
        script = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "print(c.execute('SELECT count(*) FROM invoice_line_items').fetchone()[0]); c.close()"
        )
        reader = subprocess.run(
            [sys.executable, "-c", script, str(engine.url.database)],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(reader.stdout)
    with engine.connect() as c:
        return int(c.scalar(sa.text("SELECT count(*) FROM invoice_line_items")) or 0)


def test_a_waiting_sync_runs_and_reconcile_beside_a_sync_lose_nothing(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator(scale=Scale(customers=3, invoices=3, lines_per_invoice=4000))
    settings, engine, _sessions = setup(sim, db_url, tmp_path)
    engine.dispose()
    expected = sum(sim.data.line_count(invoice) for invoice in sim.data.invoices)
    assert len(sim.data.invoices) >= 3
    env = {**os.environ, "PCSYNC_CLIENT_SECRET": sim.config.client_secret}
    pause = tmp_path / "failpoint"
    pause.mkdir()
    # An invoice is 4000 lines: the 4th batch after them is inside the second
    # invoice's write, after the first invoice was committed.
    first = subprocess.Popen(
        _cli(settings.source, "sync"),
        env={**env, "PCSYNC_FAILPOINT": f"lines.batch:{_IN_SECOND_INVOICE}=pause:{pause}"},
        stderr=subprocess.PIPE,
        text=True,
    )
    second: subprocess.Popen[str] | None = None
    try:
        _wait_for(pause / "paused", first)
        assert _read_and_close(engine) == 4000  # the first invoice: the pause is in the second
        second = subprocess.Popen(
            _cli(settings.source, "sync", "--wait"), env=env, stderr=subprocess.PIPE, text=True
        )
        runs = subprocess.run(
            _cli(settings.source, "runs", "--json"), env=env, capture_output=True, text=True
        )
        assert runs.returncode == 0, runs.stderr
        assert [r["status"] for r in json.loads(runs.stdout)["runs"]] == ["running"]
        # A reconciliation reads beside the sync and, on SQLite, waits for the sync's
        # invoice transaction to end before it stores its result (one writer at a time;
        # the busy timeout is five minutes).
        reconcile = subprocess.Popen(
            _cli(settings.source, "reconcile"), env=env, stderr=subprocess.PIPE, text=True
        )
        time.sleep(0.5)  # not a timing assertion: gives the waiting sync a chance to misbehave
        assert second.poll() is None, "the second sync did not wait for the first"
        assert first.poll() is None
    finally:
        (pause / "resume").touch()
        _, first_err = first.communicate(timeout=300)
        if second is not None:
            _, second_err = second.communicate(timeout=300)
    _, reconcile_err = reconcile.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second is not None
    assert second.returncode == 0, second_err
    assert reconcile.returncode == 0, reconcile_err
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM invoice_line_items")) == expected
        statuses = c.scalars(sa.text("SELECT status FROM runs WHERE kind = 'sync' ORDER BY id"))
        assert list(statuses) == ["succeeded", "succeeded"]
        # The waiting sync found every invoice complete: the first stored them all itself.
        last = "SELECT counts FROM runs WHERE kind = 'sync' ORDER BY id DESC LIMIT 1"
        counts = c.scalar(sa.text(last))
        lineitems = (json.loads(counts) if isinstance(counts, str) else counts)["lineitems"]
        assert lineitems == {"invoices_skipped": len(sim.data.invoices)}
        if engine.dialect.name == "sqlite":
            assert c.scalar(sa.text("PRAGMA integrity_check")) == "ok"
    engine.dispose()


def test_flush_behind_never_opens_or_closes_a_descriptor_of_the_database(
    tmp_path, monkeypatch
) -> None:
    """Closing any descriptor of a file drops the process's locks on it: the flushing
    thread must only ever use the descriptors SQLite holds."""
    from sync.db import flush
    from sync.db.engine import make_engine
    from sync.db.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'pcsync.db'}")
    upgrade(engine)
    targets = frozenset(
        os.path.realpath(str(engine.url.database)) + suffix for suffix in ("", "-wal")
    )

    def ours() -> set[tuple[str, str]]:
        found = set()
        for entry in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{entry}")
                if target in targets:
                    found.add((entry, target))
        return found

    flushed: list[int] = []
    real_sync = flush._sync
    monkeypatch.setattr(flush, "FLUSH_EVERY", 0.005)
    monkeypatch.setattr(flush, "_sync", lambda fd: (flushed.append(fd), real_sync(fd)))
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x TEXT)"))
    before = ours()
    with flush.flush_behind(engine), engine.begin() as connection:
        for n in range(200):
            connection.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": "x" * 1000 * n})
            assert ours() <= before  # no descriptor of the thread's own, ever
        while len(flushed) < 4:  # let the thread flush a few times (it runs as fast as it can)
            time.sleep(0.005)
        during = ours()
    assert ours() == before == during
    assert {os.readlink(f"/proc/self/fd/{fd}") for fd in flushed} <= targets
    engine.dispose()
