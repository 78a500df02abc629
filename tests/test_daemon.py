"""The daemon: scheduled jobs configured safely, run on schedule, stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import sqlalchemy as sa

from sync.daemon import Daemon
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
    service.reconcile_job()
    service.collections_job()
    assert _runs(world.engine)[-2:] == [
        ("reconcile", "schedule", "succeeded"),
        ("collections", "schedule", "succeeded"),
    ]
    assert list((tmp_path / "notices").glob("*.eml"))  # the round wrote the notices
    assert not any(e["event"] in ("suspend", "reactivate") for e in world.audit())  # never
