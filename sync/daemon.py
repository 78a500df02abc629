"""``pcsync daemon``: APScheduler 3 as a thin shell over the very functions the CLI calls.

Jobs have stable ids, run one at a time (``max_instances=1``), collapse missed
runs into one (``coalesce``) and still run when late by up to
``misfire_grace_seconds`` (APScheduler's default of one second would silently
drop a run the machine was too busy for). SIGTERM/SIGINT set a stop event: the
running job ends at its next safe point (after the current invoice or batch is
committed), the lock is released, and the daemon exits 0.

A job that fails — for any reason, an unexpected exception too — is logged,
counted in ``pcsync_job_failures_total`` and posted to the webhook; the daemon
goes on. Once a day (and at start) it proves the audit log's hash chain and
alerts through the webhook when it is broken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import LockedError, PcsyncError
from sync import audit
from sync.collections.job import run_collections_round
from sync.config import Settings
from sync.jobs import StopRequested, SyncOptions, run_sync
from sync.logs import redact
from sync.reconcile import run_reconciliation
from sync.runs import RunView, list_runs
from sync.webhook import post_summary

__all__ = ["AUDIT_VERIFY_CRON", "Daemon"]

log = logging.getLogger(__name__)

AUDIT_VERIFY_CRON = "15 4 * * *"  # daily, in the schedule's time zone


class _Metrics:
    """Prometheus metrics of the scheduled jobs, on their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.last_success = Gauge(
            "pcsync_job_last_success_timestamp_seconds",
            "When the job last succeeded (Unix time).",
            ["job"],
            registry=self.registry,
        )
        self.failures = Counter(
            "pcsync_job_failures", "Scheduled runs that failed.", ["job"], registry=self.registry
        )
        self.rows = Counter(
            "pcsync_rows_synced", "Records fetched by syncs.", ["resource"], registry=self.registry
        )
        self.requests = Counter(
            "pcsync_requests", "Requests sent to Microsoft.", registry=self.registry
        )
        self.throttled = Counter(
            "pcsync_throttled_requests", "Requests answered 429.", registry=self.registry
        )

    def record(self, view: RunView) -> None:
        """Count what a finished run did."""
        for resource, numbers in view.counts.items():
            self.rows.labels(resource).inc(numbers.get("fetched", 0))
        self.requests.inc(view.requests)
        self.throttled.inc(view.throttled)
        if view.status == "succeeded":
            self.last_success.labels(view.kind).set(time.time())
        else:
            self.failures.labels(view.kind).inc()


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
        audit.attach_head(sessions, audit.head_path(settings))
        self.stop = stop or threading.Event()
        zone = ZoneInfo(settings.schedule.timezone)
        self.scheduler = BackgroundScheduler(timezone=zone)
        self.metrics = _Metrics()

    def sync_job(self) -> None:
        """The scheduled sync: same function as ``pcsync sync``; failures are logged, not fatal."""
        options = SyncOptions(trigger="schedule", stop=self.stop)
        try:
            run_id = run_sync(self.settings, self.engine, self.sessions, options)
            log.info("scheduled sync run %d succeeded", run_id)
        except LockedError as exc:
            log.warning("scheduled sync skipped: %s", exc)
            return
        except StopRequested as exc:
            log.info("scheduled sync stopped: %s", exc)
        except PcsyncError as exc:
            log.error("scheduled sync failed: %s", exc)
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("sync", exc)
            return
        self._record_latest("sync")

    def reconcile_job(self) -> None:
        """The scheduled reconciliation, as of today in the schedule's time zone."""
        try:
            result = run_reconciliation(self.settings, self.sessions, self._today(), "schedule")
            log.info("scheduled reconcile: %d finding(s)", len(result.findings))
        except PcsyncError as exc:
            log.error("scheduled reconcile failed: %s", exc)
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("reconcile", exc)
            return
        self._record_latest("reconcile")

    def collections_job(self) -> None:
        """The scheduled collections round: plan, notices, webhook summary — never suspends."""
        try:
            result = run_collections_round(
                self.settings, self.sessions, self._today(), "pcsync daemon", "schedule"
            )
            log.info("%s", result.summary())
            summary: str | None = result.summary()
        except PcsyncError as exc:
            log.error("scheduled collections round failed: %s", exc)
            summary = None
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("collections", exc)
            return
        self._record_latest("collections", summary)

    def audit_job(self) -> None:
        """Prove the audit log (hash chain and head file); a broken chain is an alert."""
        try:
            check = audit.verify_chain(self.sessions, audit.head_path(self.settings))
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("audit_verify", exc)
            return
        if check.ok:
            log.info("%s", check.text())
            self.metrics.last_success.labels("audit_verify").set(time.time())
            return
        log.error("%s", check.text())
        self.metrics.failures.labels("audit_verify").inc()
        self._post(f"pcsync ALERT: {check.text()}")

    def _job_crashed(self, kind: str, exc: Exception) -> None:
        """A job that raised what nobody expected: logged with its traceback, counted, posted.

        Its run (if it got as far as starting one) is already recorded failed.
        """
        log.error("scheduled %s failed unexpectedly: %s", kind, type(exc).__name__, exc_info=exc)
        self.metrics.failures.labels(kind).inc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        self._post(f"pcsync {kind} job failed: {type(exc).__name__}: {redact(first)}")

    def _post(self, text: str) -> None:
        webhook = self.settings.notifications.webhook_url
        if webhook is not None:
            post_summary(webhook.get_secret_value(), text)

    def _today(self) -> date:
        return datetime.now(ZoneInfo(self.settings.schedule.timezone)).date()

    def _record_latest(self, kind: str, summary: str | None = None) -> None:
        """Count the job's latest run in the metrics and post its summary to the webhook."""
        latest = next((v for v in list_runs(self.sessions, 5) if v.kind == kind), None)
        if latest is None:
            return
        self.metrics.record(latest)
        if summary is None or latest.status != "succeeded":
            counts = "; ".join(
                f"{what}: " + ", ".join(f"{k}={n}" for k, n in sorted(numbers.items()))
                for what, numbers in sorted(latest.counts.items())
            )
            summary = f"pcsync {kind} run {latest.id} {latest.status}" + (
                f": {counts}" if counts else ""
            )
            if latest.error:
                summary += f" — {latest.error}"
        self._post(summary)

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

    def run(self, *, sync_now: bool = False, metrics: tuple[str, int] | None = None) -> None:
        """Schedule the jobs, log when they next run, and serve until stopped.

        ``metrics`` (host, port) also serves Prometheus metrics over HTTP.
        """
        schedule = self.settings.schedule
        server = None
        if metrics is not None:
            server, _ = start_http_server(metrics[1], metrics[0], registry=self.metrics.registry)
            log.info("metrics on http://%s:%d/metrics", *metrics)
        if schedule.sync:
            self._add("sync", schedule.sync, self.sync_job, sync_now)
        if schedule.reconcile:
            self._add("reconcile", schedule.reconcile, self.reconcile_job, False)
        if schedule.collections:
            self._add("collections", schedule.collections, self.collections_job, False)
        self._add("audit_verify", AUDIT_VERIFY_CRON, self.audit_job, True)
        self.scheduler.start()
        for job in self.scheduler.get_jobs():
            log.info("job %s: next run %s (%s)", job.id, job.next_run_time, schedule.timezone)
        try:
            self.stop.wait()
        finally:
            log.info("stopping: waiting for the running job to reach a safe point")
            self.scheduler.shutdown(wait=True)
            if server is not None:
                server.shutdown()
            log.info("stopped")
