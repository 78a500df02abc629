"""``pcsync daemon``: APScheduler 3 as a thin shell over the very functions the CLI calls.

Jobs have stable ids, run one at a time (``max_instances=1``), collapse missed
runs into one (``coalesce``) and still run when late by up to
``misfire_grace_seconds`` (APScheduler's default of one second would silently
drop a run the machine was too busy for). SIGTERM/SIGINT set a stop event: the
running job ends at its next safe point (after the current invoice or batch is
committed), the lock is released, and the daemon exits 0.

A job that fails — for any reason, an unexpected exception too — is logged,
counted in ``pcsync_job_failures_total`` and posted to the webhook; the daemon
goes on. The ``report`` job, after the reconcile, writes the day's reports and mails
them to finance once per date (sync/report_mail.py). Once a day (and on becoming
leader) it proves the audit log's hash chain and alerts through the webhook when it
is broken.

At start it runs ``pcsync check`` and logs each failed item with its remedy,
then goes on: a token or a network path may well work by the next job. Then it
stands by until it holds the leader lock (sync/runtime/leader.py), and only the leader's
scheduler runs jobs: the scheduler starts paused, resumes on becoming leader,
and pauses — asking the running job to stop — the moment the lock is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import PcsyncError
from sync import audit
from sync.check import Outcome, run_checks
from sync.collections.job import run_collections_round
from sync.config import Settings
from sync.config.cron import crontab_trigger
from sync.db.models import Run
from sync.errors import LockedError
from sync.jobs import StopRequested, SyncOptions, run_sync
from sync.reconcile import run_reconciliation
from sync.report_mail import deliver_report
from sync.runtime.health import AuditState, HealthServer, health_report
from sync.runtime.leader import Leadership, leadership_for
from sync.runtime.logs import redact
from sync.runtime.runs import RunStatus, RunView, last_run_id, own_scheduled_run
from sync.webhook import ChatMessage, post_summary

__all__ = ["AUDIT_VERIFY_CRON", "Daemon"]

log = logging.getLogger(__name__)

AUDIT_VERIFY_CRON = "15 4 * * *"  # daily, in the schedule's time zone
# A scheduled sync that finds the lock taken (a manual sync, a collections apply) runs
# again this much later, until it gets the lock: skipping it would leave the data a
# whole schedule interval older.
SYNC_RETRY = timedelta(minutes=5)
SYNC_RETRY_JOB = "sync-retry"
# Runs that ended (failed ones too: their failure was reported); a run still "running"
# or "interrupted" when a daemon takes over did not do the job.
_FINISHED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED)


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
        leadership: Leadership | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        audit.attach_head(sessions, audit.head_path(settings))
        self.stop = stop or threading.Event()
        zone = ZoneInfo(settings.schedule.timezone)
        self.scheduler = BackgroundScheduler(timezone=zone)
        self.metrics = _Metrics()
        self.leadership = leadership or leadership_for(engine)
        self.role = "standby"
        self.audit_state = AuditState()
        # Set when this daemon's leadership (or the daemon) ends: the running sync stops.
        self._term = threading.Event()
        # Jobs running now: the scheduler is shut down only once none is, since a job
        # that (re)schedules at its end would wait for ever on the scheduler's locks,
        # which its shutdown holds while it waits for the job.
        self._running = 0
        self._idle = threading.Condition()

    def sync_job(self) -> None:
        """The scheduled sync: same function as ``pcsync sync``; failures are logged, not fatal."""
        options = SyncOptions(trigger="schedule", stop=self._term)
        since, error = 0, None
        try:
            since = last_run_id(self.sessions)
            run_id = run_sync(self.settings, self.engine, self.sessions, options)
            log.info("scheduled sync run %d succeeded", run_id)
            self._drop_job(SYNC_RETRY_JOB)  # this sync was the one put off
        except LockedError as exc:
            again = datetime.now(UTC) + SYNC_RETRY
            self._schedule(SYNC_RETRY_JOB, DateTrigger(run_date=again), self.sync_job)
            log.warning("scheduled sync put off to %s: %s", f"{again:%H:%M} UTC", exc)
            return
        except StopRequested as exc:
            log.info("scheduled sync stopped: %s", exc)
            error = str(exc)
        except PcsyncError as exc:
            log.error("scheduled sync failed: %s", exc)
            error = str(exc)
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("sync", exc)
            return
        self._record_own("sync", since, error=error)

    def reconcile_job(self) -> None:
        """The scheduled reconciliation, as of today in the schedule's time zone."""
        since, error = 0, None
        try:
            since = last_run_id(self.sessions)
            result = run_reconciliation(self.settings, self.sessions, self._today(), "schedule")
            log.info("scheduled reconcile: %d finding(s)", len(result.findings))
        except PcsyncError as exc:
            log.error("scheduled reconcile failed: %s", exc)
            error = str(exc)
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("reconcile", exc)
            return
        self._record_own("reconcile", since, error=error)

    def collections_job(self) -> None:
        """The scheduled collections round: plan, notices, webhook summary — never suspends."""
        since, error = 0, None
        try:
            since = last_run_id(self.sessions)
            result = run_collections_round(
                self.settings, self.sessions, self._today(), "pcsync daemon", "schedule"
            )
            log.info("%s", result.summary())
            summary: str | None = result.summary()
        except PcsyncError as exc:
            log.error("scheduled collections round failed: %s", exc)
            summary, error = None, str(exc)
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("collections", exc)
            return
        self._record_own("collections", since, summary, error)

    def report_job(self) -> None:
        """The scheduled report: today's files written and mailed to finance once per date."""
        since, error = 0, None
        try:
            since = last_run_id(self.sessions)
            delivery = deliver_report(self.settings, self.sessions, self._today(), "schedule")
            log.info("%s", delivery.message.text)
            message: ChatMessage | None = delivery.message
        except PcsyncError as exc:
            log.error("scheduled report failed: %s", exc)
            message, error = None, str(exc)
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("report", exc)
            return
        self._record_own("report", since, message, error)

    def audit_job(self) -> None:
        """Prove the audit log (hash chain and head file); a broken chain is an alert."""
        try:
            check = audit.verify_chain(self.sessions, audit.head_path(self.settings))
        except Exception as exc:  # the daemon outlives any one job
            self._job_crashed("audit_verify", exc)
            return
        self.audit_state = AuditState(check, datetime.now(UTC))
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

    def _post(self, message: str | ChatMessage) -> None:
        notifications = self.settings.notifications
        if notifications.webhook_url is not None:
            url = notifications.webhook_url.get_secret_value()
            post_summary(url, message, fmt=notifications.webhook_format)

    def _today(self) -> date:
        return datetime.now(ZoneInfo(self.settings.schedule.timezone)).date()

    def _record_own(
        self,
        kind: str,
        since: int,
        summary: str | ChatMessage | None = None,
        error: str | None = None,
    ) -> None:
        """Count the job's own run in the metrics and post its summary to the webhook.

        The job's run is the scheduled run of ``kind`` this daemon recorded after run
        ``since`` — not merely the newest of its kind, which is an earlier success (or an
        admin's run) when the job failed before recording one: that failure is counted and
        posted as such.
        """
        latest = own_scheduled_run(self.sessions, kind, since)
        if latest is None:
            if error is not None:
                self.metrics.failures.labels(kind).inc()
                first = (error.strip().splitlines() or [""])[0][:300]
                self._post(f"pcsync {kind} job failed before its run began: {redact(first)}")
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

    def _drop_job(self, job_id: str) -> None:
        if self.stop.is_set():
            return  # stopping: the scheduler and its jobs go anyway
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    def _add(self, job_id: str, cron: str, func: Callable[[], None], run_now: bool) -> None:
        """Schedule a cron job; one whose latest time passed within the misfire grace while
        no daemon ran (restarted, rebooted) is due at once — ``_skip_if_run_elsewhere``
        drops that run when one of its kind finished since."""
        zone = ZoneInfo(self.settings.schedule.timezone)
        trigger = crontab_trigger(cron, zone)
        now = datetime.now(UTC)
        grace = timedelta(seconds=self.settings.schedule.misfire_grace_seconds)
        first = now if run_now else trigger.get_next_fire_time(None, now - grace)
        extra = {"next_run_time": first} if first is not None and first <= now else {}
        self._schedule(job_id, trigger, func, **extra)

    def _schedule(
        self, job_id: str, trigger: BaseTrigger, func: Callable[[], None], **extra: Any
    ) -> None:
        """One job (a schedule or a one-off retry): one at a time, late runs coalesced and
        still run within the misfire grace, not dropped."""
        if self.stop.is_set():
            return  # stopping: nothing is scheduled any more

        def counted() -> None:
            with self._idle:
                self._running += 1
            try:
                func()
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        self.scheduler.add_job(
            counted,
            trigger,
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=self.settings.schedule.misfire_grace_seconds,
            **extra,
        )

    def run(self, *, sync_now: bool = False, metrics: tuple[str, int] | None = None) -> None:
        """Check, schedule the jobs, lead or stand by, and serve until stopped.

        ``metrics`` (host, port) also serves Prometheus ``/metrics`` and ``/healthz``.
        """
        self.preflight()
        schedule = self.settings.schedule
        server = None
        if metrics is not None:
            server = HealthServer(metrics, self.metrics.registry, self.health)
            server.start()
            log.info("metrics on http://%s:%d/metrics, health on /healthz", *metrics)
        if schedule.sync:
            self._add("sync", schedule.sync, self.sync_job, sync_now)
        if schedule.reconcile:
            self._add("reconcile", schedule.reconcile, self.reconcile_job, False)
        if schedule.collections:
            self._add("collections", schedule.collections, self.collections_job, False)
        if schedule.report:
            self._add("report", schedule.report, self.report_job, False)
        self._add("audit_verify", AUDIT_VERIFY_CRON, self.audit_job, True)
        self.scheduler.start(paused=True)  # the leader resumes it
        for job in self.scheduler.get_jobs():
            log.info("job %s: next run %s (%s)", job.id, job.next_run_time, schedule.timezone)
        try:
            self._lead_until_stopped()
        finally:
            log.info("stopping: waiting for the running job to reach a safe point")
            self._term.set()
            self.scheduler.pause()  # no job starts now
            with self._idle:
                self._idle.wait_for(lambda: self._running == 0)
            self.scheduler.shutdown(wait=True)
            self.leadership.release()
            if server is not None:
                server.stop()
            log.info("stopped")

    def preflight(self) -> None:
        """Run ``pcsync check``'s items and log each failure with its remedy; never raise."""
        items = run_checks(self.settings, self.engine)
        for item in items:
            if item.outcome is Outcome.FAIL:
                log.error("check %s failed: %s -> %s", item.name, item.detail, item.remedy)
            elif item.outcome is Outcome.WARN:
                log.warning("check %s: %s -> %s", item.name, item.detail, item.remedy)
        failed = sum(item.outcome is Outcome.FAIL for item in items)
        if failed:
            log.error(
                "%d of %d checks failed; the daemon goes on (see `pcsync check`)",
                failed,
                len(items),
            )
        else:
            log.info("checks passed (%d items)", len(items))

    def health(self) -> tuple[int, dict[str, object]]:
        """``/healthz``: status code and JSON body."""
        return health_report(self.engine, self.role, self.audit_state)

    def _lead_until_stopped(self) -> None:
        poll = self.settings.schedule.standby_poll_seconds
        waiting = False
        while not self.stop.is_set():
            if self.role == "leader":
                if not self.leadership.still_held():
                    self._step_down()
                    waiting = False
            elif self.leadership.try_acquire():
                self._take_over()
            elif not waiting:
                log.info("standby: another daemon leads; trying for the lock every %d s", poll)
                waiting = True
            self.stop.wait(poll)

    def _take_over(self) -> None:
        self._term = threading.Event()
        for job in self.scheduler.get_jobs():
            self._skip_if_run_elsewhere(job)
        self.role = "leader"
        self.scheduler.resume()
        log.info("leader: this daemon runs the scheduled jobs")

    def _step_down(self) -> None:
        self.scheduler.pause()
        self._term.set()
        self.role = "standby"
        log.error(
            "lost the leader lock: scheduling paused, the running job asked to stop; "
            "trying to become leader again"
        )

    def _skip_if_run_elsewhere(self, job: Job) -> None:
        """Skip a run missed while standing by (or down) when a run of its kind finished
        since — the leader of the time's, or an admin's; one killed with its daemon did not
        finish, and is made now."""
        now = datetime.now(UTC)
        missed, fire = None, job.next_run_time
        while fire is not None and fire <= now:
            missed, fire = fire, job.trigger.get_next_fire_time(fire, fire)
        if missed is None or job.id == "audit_verify":
            return
        with self.sessions() as session:
            latest = session.scalar(
                select(func.max(Run.started_at)).where(
                    Run.kind == job.id, Run.status.in_(_FINISHED)
                )
            )
        if latest is not None and latest.replace(tzinfo=latest.tzinfo or UTC) >= missed:
            job.modify(next_run_time=fire)
