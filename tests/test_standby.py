"""Several daemons, one leader: standby, takeover, a lost lock session, and ``/healthz``.

The daemons are real processes on one database; every wait is for a condition (a
log line, a run in the runs table, an HTTP answer) with a generous deadline.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync.config import load_settings
from sync.runtime.daemon import Daemon
from sync.runtime.leader import leader_backend_pid, leadership_for
from tests.test_sync import config_text, setup

EVERY_MINUTE = '\n[schedule]\nsync = "* * * * *"\nreconcile = ""\nstandby_poll_seconds = 1\n'
LEADS = "leader: this daemon runs the scheduled jobs"
STANDS_BY = "standby: another daemon leads"
postgresql_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _wait_for(what: str, condition: Callable[[], Any], seconds: float = 150) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Daemon:
    """One ``pcsync daemon`` process with its own config folder, log file and HTTP port."""

    def __init__(self, sim: Any, db_url: str, folder: Path, *extra: str) -> None:
        folder.mkdir()
        config = folder / "pcsync.toml"
        config.write_text(config_text(sim, db_url, folder) + EVERY_MINUTE)
        self.port = _free_port()
        self.log = folder / "daemon.log"
        command = [sys.executable, "-m", "sync.cli", "--config", str(config), "daemon"]
        env = {**os.environ, "PCSYNC_CLIENT_SECRET": sim.config.client_secret}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--metrics-port", str(self.port), *extra],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.pid = self.process.pid

    def logged(self, text: str) -> int:
        """How many log lines contain ``text``."""
        return sum(text in line for line in self.log.read_text().splitlines())

    def health(self) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=30) as page:
                return page.status, json.loads(page.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())

    def answers(self) -> bool:
        try:
            self.health()
        except OSError:
            return False
        return True

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def _daemons() -> Iterator[list[_Daemon]]:
    started: list[_Daemon] = []
    try:
        yield started
    finally:
        for daemon in started:
            daemon.stop()


def _runs_by(engine: sa.Engine, pid: int, *, after: datetime | None = None) -> list[str]:
    """The statuses of the runs a process started (since ``after``), oldest first."""
    query = "SELECT status FROM runs WHERE pid = :pid AND started_at >= :after ORDER BY id"
    since = after or datetime(2000, 1, 1, tzinfo=UTC)
    with engine.connect() as connection:
        return list(connection.execute(sa.text(query), {"pid": pid, "after": since}).scalars())


def _finished(statuses: list[str]) -> int:
    return sum(status != "running" for status in statuses)


@postgresql_only
@pytest.mark.timeout(600)
def test_a_standby_runs_nothing_while_the_leader_lives_and_takes_over_when_it_is_killed(
    start_simulator, db_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    sim = start_simulator()
    _, engine, _ = setup(sim, db_url, tmp_path)
    with _daemons() as started:
        first = _Daemon(sim, db_url, tmp_path / "first", "--sync-now")
        started.append(first)
        _wait_for("the first daemon to lead", lambda: first.logged(LEADS))
        second = _Daemon(sim, db_url, tmp_path / "second")
        started.append(second)
        _wait_for("the second daemon to stand by", lambda: second.logged(STANDS_BY))
        _wait_for("both to answer /healthz", lambda: first.answers() and second.answers())
        assert first.health()[0] == second.health()[0] == 200
        assert (first.health()[1]["role"], second.health()[1]["role"]) == ("leader", "standby")
        # The sync at start, then one on the schedule: the standby saw a run come due.
        _wait_for("two syncs by the leader", lambda: _finished(_runs_by(engine, first.pid)) >= 2)
        assert _runs_by(engine, second.pid) == []
        assert second.logged("scheduled sync") == 0

        first.process.kill()  # SIGKILL: no clean-up, the server ends its session
        first.process.wait()
        _wait_for("the standby to take over", lambda: second.logged(LEADS))
        _wait_for("a sync by the new leader", lambda: _finished(_runs_by(engine, second.pid)))
        status, body = second.health()
        assert (status, body["role"]) == (200, "leader")
        assert body["last_sync"]["age_seconds"] >= 0
        assert second.stop() == 0
    engine.dispose()


@postgresql_only
@pytest.mark.timeout(600)
def test_a_leader_whose_lock_session_ends_stops_scheduling_until_it_leads_again(
    start_simulator, db_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    sim = start_simulator()
    _, engine, _ = setup(sim, db_url, tmp_path)
    holder = leadership_for(engine)  # the test takes the lock the moment the leader loses it
    with _daemons() as started:
        daemon = _Daemon(sim, db_url, tmp_path / "leader")
        started.append(daemon)
        _wait_for("the daemon to lead", lambda: daemon.logged(LEADS))
        backend = leader_backend_pid(engine)
        assert backend is not None
        with engine.connect() as connection:
            # PostgreSQL 14+: wait (up to 10 s) until the backend has gone, lock and all.
            ended = connection.execute(
                sa.text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": backend}
            ).scalar()
        assert ended
        assert _wait_for("the test to hold the lock", holder.try_acquire, 10)
        _wait_for("the leader to notice", lambda: daemon.logged("lost the leader lock"))
        lost_at = datetime.now(UTC)
        _wait_for("it to stand by", lambda: daemon.logged(STANDS_BY))
        assert daemon.health()[1]["role"] == "standby"
        # A sync comes due every minute: let one pass while the test holds the lock.
        due = lost_at.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=5)
        _wait_for("a scheduled sync to come due", lambda: datetime.now(UTC) > due, 90)
        assert _runs_by(engine, daemon.pid, after=lost_at) == []

        holder.release()
        _wait_for("it to lead again", lambda: daemon.logged(LEADS) == 2)
        again = _wait_for(
            "a sync run once it leads", lambda: _runs_by(engine, daemon.pid, after=lost_at)
        )
        assert len(again) >= 1
        assert daemon.stop() == 0
    engine.dispose()


@postgresql_only
def test_healthz_answers_503_only_while_the_database_cannot_be_read(
    start_simulator, db_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    sim = start_simulator()
    _, engine, _ = setup(sim, db_url, tmp_path)
    schema = db_url.rsplit("%3D", 1)[1]
    with _daemons() as started:
        daemon = _Daemon(sim, db_url, tmp_path / "daemon")
        started.append(daemon)
        _wait_for("the daemon to lead", lambda: daemon.logged(LEADS))
        _wait_for("/healthz", daemon.answers)
        status, body = daemon.health()
        assert (status, body["status"], body["database"], body["role"]) == (
            200,
            "ok",
            "ok",
            "leader",
        )
        assert body["last_sync"] is None  # nothing synced yet: information, not a failure
        _wait_for("the audit check at start", lambda: daemon.health()[1]["audit"]["state"] == "ok")
        admin = sa.create_engine(db_url.split("?")[0])
        try:
            with admin.begin() as connection:  # the daemon's schema is gone from under it
                connection.execute(sa.text(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_away"'))
            status, body = daemon.health()
            assert (status, body["status"]) == (503, "unavailable")
            assert "runs" in body["database"]
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'ALTER SCHEMA "{schema}_away" RENAME TO "{schema}"'))
            admin.dispose()
        assert daemon.health()[0] == 200
        assert daemon.stop() == 0
    engine.dispose()


def test_a_second_daemon_on_sqlite_waits_on_the_file_lock(start_simulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = start_simulator()
    url = f"sqlite:///{tmp_path / 'pcsync.db'}"
    _, engine, _ = setup(sim, url, tmp_path)
    with _daemons() as started:
        first = _Daemon(sim, url, tmp_path / "first")
        started.append(first)
        _wait_for("the first daemon to lead", lambda: first.logged(LEADS))
        second = _Daemon(sim, url, tmp_path / "second")
        started.append(second)
        _wait_for("the second to stand by", lambda: second.logged(STANDS_BY))
        _wait_for("/healthz", second.answers)
        assert second.health()[1]["role"] == "standby"
        first.process.kill()
        first.process.wait()
        _wait_for("the second to lead", lambda: second.logged(LEADS))
        assert second.health()[1]["role"] == "leader"
    engine.dispose()


def test_the_daemon_logs_failed_checks_with_their_remedy_and_goes_on(
    start_simulator, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    sim = start_simulator()
    settings, engine, sessions = setup(sim, f"sqlite:///{tmp_path / 'd.db'}", tmp_path)
    assert settings.source is not None
    wrong = load_settings(settings.source, {"PCSYNC_CLIENT_SECRET": "not-the-secret"})
    service = Daemon(wrong, engine, sessions)
    service._add = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no jobs
    caplog.set_level(logging.INFO, logger="sync.runtime.daemon")
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        _wait_for("the daemon to lead", lambda: service.role == "leader", 60)
    finally:
        service.stop.set()
        runner.join(60)
    assert not runner.is_alive()
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("check ")]
    assert any(
        m.startswith("check sign-in (tokens) failed:") and "the client secret is wrong" in m
        for m in failed
    ), failed
    assert any("checks failed; the daemon goes on" in r.getMessage() for r in caplog.records)
    engine.dispose()


def test_a_run_the_leader_already_made_is_not_repeated_on_taking_over(
    start_simulator, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from sync.runtime.runs import recorded_run

    sim = start_simulator()
    settings, engine, sessions = setup(sim, f"sqlite:///{tmp_path / 'd.db'}", tmp_path)
    service = Daemon(settings, engine, sessions)
    service._add("sync", "* * * * *", service.sync_job, run_now=False)
    service._add("reconcile", "* * * * *", service.reconcile_job, run_now=False)
    service.scheduler.start(paused=True)
    try:
        missed = datetime.now(UTC) - timedelta(minutes=3)
        for job in service.scheduler.get_jobs():  # as if standing by for three minutes
            job.modify(next_run_time=missed)
        with recorded_run(sessions, "sync", "schedule", {}):  # the leader of the time synced
            pass
        for job in service.scheduler.get_jobs():  # what taking over does before resuming
            service._skip_if_run_elsewhere(job)
        jobs = {job.id: job.next_run_time for job in service.scheduler.get_jobs()}
        assert jobs["sync"] > datetime.now(UTC)  # done elsewhere: next on the schedule
        assert jobs["reconcile"] == missed  # nobody reconciled: it runs once, now
    finally:
        service.scheduler.shutdown(wait=False)
        engine.dispose()
