"""``pcsync daemon``: APScheduler 3 as a thin shell over the very functions the CLI calls.

Jobs have stable ids, run one at a time (``max_instances=1``), collapse missed
runs into one (``coalesce``) and still run when late by up to
``misfire_grace_seconds`` (APScheduler's default of one second would silently
drop a run the machine was too busy for). SIGTERM/SIGINT set a stop event: the
running job ends at its next safe point (after the current invoice or batch is
committed), the lock is released, and the daemon exits 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import LockedError, PcsyncError
from sync.config import Settings
from sync.jobs import StopRequested, SyncOptions, run_sync

__all__ = ["Daemon"]

log = logging.getLogger(__name__)


class Daemon:
    """The scheduler and its jobs; ``run`` blocks until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        sessions: sessionmaker[Session],
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.stop = stop or threading.Event()
        zone = ZoneInfo(settings.schedule.timezone)
        self.scheduler = BackgroundScheduler(timezone=zone)

    def sync_job(self) -> None:
        """The scheduled sync: same function as ``pcsync sync``; failures are logged, not fatal."""
        options = SyncOptions(trigger="schedule", stop=self.stop)
        try:
            run_id = run_sync(self.settings, self.engine, self.sessions, options)
            log.info("scheduled sync run %d succeeded", run_id)
        except LockedError as exc:
            log.warning("scheduled sync skipped: %s", exc)
        except StopRequested as exc:
            log.info("scheduled sync stopped: %s", exc)
        except PcsyncError as exc:
            log.error("scheduled sync failed: %s", exc)

    def _add(self, job_id: str, cron: str, func: Callable[[], None], run_now: bool) -> None:
        schedule = self.settings.schedule
        extra = {"next_run_time": datetime.now(UTC)} if run_now else {}
        self.scheduler.add_job(
            func,
            CronTrigger.from_crontab(cron, timezone=ZoneInfo(schedule.timezone)),
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=schedule.misfire_grace_seconds,
            **extra,
        )

    def run(self, *, sync_now: bool = False) -> None:
        """Schedule the jobs, log when they next run, and serve until stopped."""
        schedule = self.settings.schedule
        if schedule.sync:
            self._add("sync", schedule.sync, self.sync_job, sync_now)
        for name in ("reconcile", "collections"):
            if getattr(schedule, name):
                log.warning("[schedule] %s is set, but this version has no %s job yet", name, name)
        self.scheduler.start()
        for job in self.scheduler.get_jobs():
            log.info("job %s: next run %s (%s)", job.id, job.next_run_time, schedule.timezone)
        try:
            self.stop.wait()
        finally:
            log.info("stopping: waiting for the running job to reach a safe point")
            self.scheduler.shutdown(wait=True)
            log.info("stopped")
