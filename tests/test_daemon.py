"""The daemon: scheduled jobs configured safely, run on schedule, stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from sync.runtime.daemon import Daemon
from tests.test_sync import setup


def test_jobs_are_single_instance_coalesced_with_a_misfire_grace(start_simulator, tmp_path) -> None:
    sim = start_simulator()
    settings, engine, sessions = setup(sim, f"sqlite:///{tmp_path / 'd.db'}", tmp_path)
    service = Daemon(settings, engine, sessions)
    service._add("sync", "0 */4 * * *", service.sync_job, run_now=False)
    (job,) = service.scheduler.get_jobs()
    assert (job.id, job.max_instances, job.coalesce) == ("sync", 1, True)
    assert job.misfire_grace_time == settings.schedule.misfire_grace_seconds == 3600
    assert str(job.trigger.timezone) == "UTC"
    engine.dispose()


def test_a_scheduled_sync_that_finds_the_lock_taken_runs_again_later(
    start_simulator, db_url, tmp_path
) -> None:
    """A collections apply (or a manual sync) holding the lock puts the scheduled sync
    off by a few minutes, not by a whole schedule interval; once it runs, no retry is left."""
    from sync.runtime.daemon import SYNC_RETRY, SYNC_RETRY_JOB
    from sync.runtime.lock import run_lock

    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    service = Daemon(settings, engine, sessions)
    service._add("sync", "0 */4 * * *", service.sync_job, run_now=False)
    before = datetime.now(UTC)
    with run_lock(engine, kind="sync", holder="collections apply"):
        service.sync_job()
    retry = service.scheduler.get_job(SYNC_RETRY_JOB)
    assert retry is not None
    assert before + SYNC_RETRY <= retry.trigger.run_date <= datetime.now(UTC) + SYNC_RETRY
    # Run late rather than dropped (APScheduler's own default grace is one second).
    assert retry.misfire_grace_time == settings.schedule.misfire_grace_seconds
    assert (retry.max_instances, retry.coalesce) == (1, True)
    assert not [run for run in _runs(engine) if run[0] == "sync"]
    retry.func()  # the retry, on time
    assert [run for run in _runs(engine) if run[0] == "sync"] == [("sync", "schedule", "succeeded")]
    assert service.scheduler.get_job(SYNC_RETRY_JOB) is None
    assert service.scheduler.get_job("sync") is not None  # the schedule itself stays
    engine.dispose()


def _runs(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT kind, trigger, status FROM runs ORDER BY id")
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_daemon_runs_a_scheduled_sync_survives_a_failure_and_stops_on_sigterm(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    sim.config.failing_exports = (sim.data.invoices[0].id,)
    settings, engine, _ = setup(sim, db_url, tmp_path)
    env = {**os.environ, "PCSYNC_CLIENT_SECRET": sim.config.client_secret}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "sync.cli", "--config", str(settings.source), "daemon"]
    daemon = subprocess.Popen(
        [*command, "--sync-now", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ("sync", "schedule", "partial") not in _runs(engine):
            time.sleep(0.2)
        assert ("sync", "schedule", "partial") in _runs(engine)
        time.sleep(0.5)
        assert daemon.poll() is None  # a failing job does not kill the daemon
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert 'pcsync_job_failures_total{job="sync"} 1.0' in text
        assert 'pcsync_rows_synced_total{resource="customers"} 12.0' in text
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, err
    assert time.monotonic() - started < 10
    assert "job sync: next run" in err
    assert "scheduled sync failed" in err
    assert "stopped" in err
    engine.dispose()


def test_the_scheduled_reconcile_and_collections_jobs_record_their_runs(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world.configure(
        '[schedule]\nreconcile = "30 5 * * *"\ncollections = "0 7 * * 1-5"\n'
        f'[notifications]\nout_dir = "{tmp_path / "notices"}"'
    )
    service = Daemon(world.settings, world.engine, world.sessions)
    service._add("reconcile", world.settings.schedule.reconcile, service.reconcile_job, False)
    service._add("collections", world.settings.schedule.collections, service.collections_job, False)
    assert {job.id for job in service.scheduler.get_jobs()} == {"reconcile", "collections"}
    # crontab's 1-5 is Monday to Friday: after Friday's run the next one is on Monday.
    friday_evening = datetime(2026, 12, 4, 18, tzinfo=UTC)
    trigger = service.scheduler.get_job("collections").trigger
    assert trigger.get_next_fire_time(None, friday_evening) == datetime(2026, 12, 7, 7, tzinfo=UTC)
    service.reconcile_job()
    service.collections_job()
    assert _runs(world.engine)[-2:] == [
        ("reconcile", "schedule", "succeeded"),
        ("collections", "schedule", "succeeded"),
    ]
    assert list((tmp_path / "notices").glob("*.eml"))  # the round wrote the notices
    assert not any(e["event"] in ("suspend", "reactivate") for e in world.audit())  # never


class _Webhook:
    """A local HTTPS server standing in for the chat webhook; keeps what was posted.

    It serves with the simulator's certificate, which the tests' requests trust.
    """

    def __init__(self, tls) -> None:  # type: ignore[no-untyped-def]
        import json
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        posted: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                posted.append(json.loads(self.rfile.read(length))["text"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.posted = posted
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hook/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _daemon_with_webhook(start_simulator, db_url, tmp_path) -> tuple[Daemon, _Webhook]:  # type: ignore[no-untyped-def]
    from sync.config import load_settings

    sim = start_simulator()
    webhook = _Webhook(sim.tls)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    assert settings.source is not None
    with settings.source.open("a") as f:
        f.write('\n[notifications]\nwebhook_url_env = "PCSYNC_WEBHOOK"\n')
    env = {"PCSYNC_CLIENT_SECRET": sim.config.client_secret, "PCSYNC_WEBHOOK": webhook.url}
    return Daemon(load_settings(settings.source, env), engine, sessions), webhook


def test_an_unexpected_job_exception_is_counted_and_posted(
    start_simulator, db_url, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import sync.runtime.daemon

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("no such column in the ledger")

    monkeypatch.setattr(sync.runtime.daemon, "run_reconciliation", broken)
    service, webhook = _daemon_with_webhook(start_simulator, db_url, tmp_path)
    try:
        service.reconcile_job()  # does not raise: the daemon goes on
        failures = service.metrics.registry.get_sample_value(
            "pcsync_job_failures_total", {"job": "reconcile"}
        )
        assert failures == 1
        (text,) = webhook.posted
        assert text.startswith("pcsync reconcile job failed: KeyError")
        assert "no such column" in text
    finally:
        webhook.close()
        service.engine.dispose()


def test_a_job_refused_before_its_run_is_posted_failed_not_as_the_last_success(
    start_simulator, db_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from sync.config import load_settings
    from sync.jobs import SyncOptions, run_sync

    service, webhook = _daemon_with_webhook(start_simulator, db_url, tmp_path)
    try:
        run_sync(service.settings, service.engine, service.sessions, SyncOptions())
        service.reconcile_job()
        (posted,) = webhook.posted
        assert posted.startswith("pcsync reconcile run ")
        assert " succeeded" in posted
        # A mistyped override refuses the reconcile before it records a run: yesterday's
        # run stays the newest, and must not be posted (or counted) as today's.
        source = service.settings.source
        assert source is not None
        with source.open("a") as f:
            f.write('\n[billing.overrides."no-such-customer"]\nmarkup_percent = "10"\n')
        env = {"PCSYNC_CLIENT_SECRET": "unused", "PCSYNC_WEBHOOK": webhook.url}
        refused = Daemon(load_settings(source, env), service.engine, service.sessions)
        refused.reconcile_job()
        (alert,) = webhook.posted[1:]
        assert alert.startswith("pcsync reconcile job failed before its run began: config file")
        assert "no-such-customer" in alert
        metrics = refused.metrics.registry
        assert metrics.get_sample_value("pcsync_job_failures_total", {"job": "reconcile"}) == 1
        success = "pcsync_job_last_success_timestamp_seconds"
        assert metrics.get_sample_value(success, {"job": "reconcile"}) is None
    finally:
        webhook.close()
        service.engine.dispose()


def test_the_daily_audit_check_alerts_when_the_chain_breaks(
    start_simulator, db_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from sync import audit

    service, webhook = _daemon_with_webhook(start_simulator, db_url, tmp_path)
    try:
        for actor in ("ana", "bob"):
            with service.sessions.begin() as session:
                audit.record(session, "approved", actor)
        service.audit_job()
        assert webhook.posted == []  # an intact chain says nothing
        audit.head_path(service.settings).write_text(f"3 {'ab' * 32}\n")
        service.audit_job()
        (alert,) = webhook.posted
        assert alert.startswith("pcsync ALERT: audit log broken: ")
        failures = service.metrics.registry.get_sample_value(
            "pcsync_job_failures_total", {"job": "audit_verify"}
        )
        assert failures == 1
        service._add("audit_verify", audit_cron(), service.audit_job, True)
        (job,) = service.scheduler.get_jobs()
        assert (job.id, job.max_instances, job.coalesce) == ("audit_verify", 1, True)
    finally:
        webhook.close()
        service.engine.dispose()


def audit_cron() -> str:
    from sync.runtime.daemon import AUDIT_VERIFY_CRON

    return AUDIT_VERIFY_CRON


@pytest.mark.parametrize("since", ["nothing", "a run killed with its daemon"])
def test_a_run_missed_while_the_daemon_was_down_runs_once_at_start(
    start_simulator, db_url, tmp_path, since
) -> None:  # type: ignore[no-untyped-def]
    """Restarted (a deploy, a reboot) five minutes after the reconcile's time, within the
    misfire grace, the daemon reconciles at once — also when the run it missed was
    killed with the daemon before it finished."""
    import threading

    from sync.config import load_settings
    from sync.db.models import Run

    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    missed = datetime.now(UTC) - timedelta(minutes=5)
    assert settings.source is not None
    with settings.source.open("a") as f:
        f.write(
            f'\n[schedule]\nsync = ""\nreport = ""\nstandby_poll_seconds = 1\n'
            f'reconcile = "{missed.minute} {missed.hour} * * *"\n'
        )
    settings = load_settings(settings.source, {"PCSYNC_CLIENT_SECRET": sim.config.client_secret})
    if since != "nothing":
        with sessions.begin() as session:  # started on time; its daemon died mid-run
            session.add(
                Run(
                    kind="reconcile",
                    trigger="schedule",
                    status="running",
                    started_at=missed + timedelta(seconds=1),
                    pid=2**22 + 1,  # above Linux's pid_max: no process has it
                    hostname="gone",
                    params={},
                    counts={},
                )
            )
    service = Daemon(settings, engine, sessions)
    daemon = threading.Thread(target=service.run)
    daemon.start()
    try:
        made = _wait_for_run(engine, "reconcile", "succeeded")
    finally:
        service.stop.set()
        daemon.join(120)
    assert made == [("reconcile", "schedule", "succeeded")]
    engine.dispose()


def _wait_for_run(engine: sa.Engine, kind: str, status: str) -> list[tuple[str, str, str]]:
    """The runs of ``kind`` in ``status``, once there is one (or after a minute: none)."""
    deadline = time.monotonic() + 60
    while True:
        found = [run for run in _runs(engine) if run[0] == kind and run[2] == status]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
