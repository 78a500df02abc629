"""Sync jobs: Partner Center → database. The CLI and the scheduler call exactly these.

One sync run does, in order, whichever of ``customers``, ``subscriptions``,
``invoices`` and ``lineitems`` were asked for. Each unit of work commits on its
own (all customers; one customer's subscriptions; all invoices; one invoice's or
amendment's lines of one provider; one currency's unbilled lines of one period),
so a run killed at any point keeps what was finished and the next run picks up
the rest. A unit that fails — Microsoft refuses it, or one of its records cannot
be read (kept in quarantine) — fails alone: the run goes on, records what it
lacks (``sync/completeness.py``) and ends ``partial``. Invoices whose lines are
complete are not fetched again unless ``full``; the invoice list, with its
amendments, is read every run, so a credit note issued later is fetched; the
unbilled lines are refreshed each run.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import Invoice, LineSource, PartnerCenter, Provider
from reconciliation.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ConnectorError,
    NotFoundError,
    PcsyncError,
    PermissionDeniedError,
    RecordError,
)
from sync import failpoints
from sync.check import GRANT_GRAPH_BILLING, GRANT_PARTNER_CENTER_ROLE
from sync.completeness import SYNC_RESOURCES, Completeness, Unit, quarantine
from sync.config import Settings
from sync.db.flush import flush_behind
from sync.db.models import Customer as CustomerRow
from sync.db.models import LineSum, SyncCheckpoint
from sync.lines import replace_lines, replace_unbilled_lines
from sync.lock import run_lock
from sync.partner import connect
from sync.runs import RunRecorder, RunStatus, Trigger, recorded_run, settle_abandoned
from sync.store import (
    mark_checkpoint,
    upsert_customers,
    upsert_invoices,
    upsert_subscriptions,
)

__all__ = ["RESOURCES", "StopRequested", "SyncIncompleteError", "SyncOptions", "run_sync"]

log = logging.getLogger(__name__)

RESOURCES = SYNC_RESOURCES
T = TypeVar("T")

# Partner Center's documented answers for a customer the partner no longer has a
# relationship with: 403 20002 "The partner id {0} has no commerce relationship with the
# customer id {1}" (learn.microsoft.com, Partner Center REST error codes) and 900159,
# the same on the newer services ("Reactivate an Azure subscription" lists it). The
# customer is skipped, not the run failed.
RELATIONSHIP_ENDED_CODES = frozenset({"20002", "900159"})
# Errors no other unit could escape: stop the run (wrong credentials, missing rights).
FATAL = (AuthenticationError, ConfigError, PermissionDeniedError)
# Refusals (403) of this many customers out of all, or of every customer, are not one
# customer's problem but the app's: it lacks its Partner Center role.
REFUSED_SHARE = Decimal("0.5")
REFUSED_MINIMUM = 3


class SyncIncompleteError(PcsyncError):
    """Some units could not be synced this time (listed); the next run retries them."""

    run_status = RunStatus.PARTIAL


class StopRequested(PcsyncError):
    """A stop was asked for (SIGTERM); the run ended after its last finished unit."""


@dataclass
class SyncOptions:
    """What one sync run should do."""

    only: tuple[str, ...] = RESOURCES
    full: bool = False
    trigger: Trigger = "manual"
    wait: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[str, int], None] | None = None
    today: date | None = None  # which month is "previous" for unbilled lines; default UTC today


@dataclass(frozen=True)
class _Job:
    """One sync run's collaborators, handed to each of its steps."""

    pc: PartnerCenter
    sessions: sessionmaker[Session]
    run: RunRecorder
    options: SyncOptions
    proof: Completeness

    def keep_aside(self, unit: Unit, key: str, errors: list[RecordError]) -> None:
        """Quarantine unreadable records of a unit (after its own transaction)."""
        quarantine(self.sessions, self.run.run_id, self.proof, unit, key, errors)


def _interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    # A stop request cuts a backoff or poll wait short instead of waiting it out.
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


def _now() -> datetime:
    return datetime.now(UTC)


def _watch(items: Iterable[T], options: SyncOptions, label: str) -> Iterator[T]:
    """Yield items, reporting progress and stopping between batches when asked."""
    for n, item in enumerate(items, start=1):
        if n % 5000 == 0:
            if options.stop.is_set():
                raise StopRequested(f"stopped while reading {label}; nothing of it was kept")
            if options.on_progress:
                options.on_progress(label, 5000)
        yield item


def _sync_customers(job: _Job) -> None:
    bad: list[RecordError] = []
    with job.sessions.begin() as session:
        upsert_customers(session, job.pc.customers(on_bad=bad.append), _now(), job.run)
    for error in bad:
        job.proof.lacking(Unit.CUSTOMERS, "list", f"a customer record was unreadable: {error}")
    job.keep_aside(Unit.CUSTOMERS, "list", bad)


def _relationship_ended(exc: ApiError) -> bool:
    return exc.status == 403 and str(exc.code) in RELATIONSHIP_ENDED_CODES


def _sync_subscriptions(job: _Job) -> None:
    with job.sessions() as session:
        customer_ids = list(session.scalars(select(CustomerRow.id).order_by(CustomerRow.id)))
    refused: list[tuple[str, ApiError]] = []
    for customer_id in customer_ids:
        if job.options.stop.is_set():
            raise StopRequested("stopped between customers' subscriptions")
        try:
            subscriptions = list(job.pc.subscriptions(customer_id))
        except FATAL:
            raise
        except NotFoundError:
            # The customer is gone: keep what is stored, note it, go on.
            log.warning("customer %s: not found (404); skipped", customer_id)
            job.run.count("subscriptions", "customers_skipped")
            continue
        except ApiError as exc:
            if _relationship_ended(exc):
                log.warning("customer %s: relationship ended (%s); skipped", customer_id, exc.code)
                job.run.count("subscriptions", "customers_skipped")
            elif exc.status == 403:
                refused.append((customer_id, exc))
            else:
                job.proof.lacking(Unit.SUBSCRIPTIONS, customer_id, str(exc))
            continue
        except RecordError as exc:
            job.proof.lacking(Unit.SUBSCRIPTIONS, customer_id, f"unreadable record: {exc}")
            job.keep_aside(Unit.SUBSCRIPTIONS, customer_id, [exc])
            continue
        except ConnectorError as exc:
            job.proof.lacking(Unit.SUBSCRIPTIONS, customer_id, str(exc))
            continue
        with job.sessions.begin() as session:
            upsert_subscriptions(session, customer_id, subscriptions, _now(), job.run)
    _judge_refusals(refused, len(customer_ids), job.proof)


def _judge_refusals(
    refused: list[tuple[str, ApiError]], customers: int, proof: Completeness
) -> None:
    """A few refused customers are missing units; most or all of them, the app's rights."""
    if not refused:
        return
    if len(refused) == customers or (
        customers >= REFUSED_MINIMUM and len(refused) > customers * REFUSED_SHARE
    ):
        raise PermissionDeniedError(
            f"Partner Center refused the subscriptions of {len(refused)} of {customers} "
            f"customer(s) (403, e.g. {refused[0][1]}): the app lacks its Partner Center "
            f"rights; {GRANT_PARTNER_CENTER_ROLE}, then run the sync again"
        )
    for customer_id, exc in refused:
        proof.lacking(Unit.SUBSCRIPTIONS, customer_id, f"refused (403): {exc}")


def _sync_invoices(job: _Job) -> list[Invoice] | None:
    """Store the invoice list with its amendments; every document, or None if unread."""
    bad: list[RecordError] = []
    try:
        with job.sessions.begin() as session:
            documents = upsert_invoices(
                session, job.pc.invoices(on_bad=bad.append), _now(), job.run
            )
    except FATAL:
        raise
    except ConnectorError as exc:
        if isinstance(exc, ApiError) and exc.status == 403:
            raise PermissionDeniedError(
                f"Partner Center refused the invoice list ({exc}): "
                f"{GRANT_PARTNER_CENTER_ROLE}, then run the sync again"
            ) from exc
        job.proof.lacking(Unit.INVOICES, "list", f"the invoice list could not be read: {exc}")
        return None
    for error in bad:
        job.proof.lacking(Unit.INVOICES, "list", f"an invoice record was unreadable: {error}")
    job.keep_aside(Unit.INVOICES, "list", bad)
    return documents


def _complete_invoices(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        keys = session.scalars(
            select(SyncCheckpoint.key).where(
                SyncCheckpoint.resource == "lineitems", SyncCheckpoint.complete.is_(True)
            )
        )
        return set(keys)


def _pending_checkpoints(sessions: sessionmaker[Session]) -> dict[str, dict[str, object]]:
    with sessions() as session:
        rows = session.execute(
            select(SyncCheckpoint.key, SyncCheckpoint.state).where(
                SyncCheckpoint.resource == "lineitems", SyncCheckpoint.complete.is_(False)
            )
        )
        return {key: state for key, state in rows}


def _stored_sums(sessions: sessionmaker[Session]) -> dict[str, tuple[int, Decimal]]:
    """Lines and their total per ``invoice:provider`` as stored (summed exactly in Python)."""
    stored: dict[str, tuple[int, Decimal]] = {}
    with sessions() as session:
        rows = session.execute(
            select(LineSum.invoice_id, LineSum.provider, LineSum.lines, LineSum.total_for_customer)
        )
        for invoice_id, provider, lines, total in rows:
            count, amount = stored.get(f"{invoice_id}:{provider}", (0, Decimal(0)))
            stored[f"{invoice_id}:{provider}"] = (count + lines, amount + total)
    return stored


def _request_exports(
    job: _Job,
    pending: list[tuple[Invoice, Provider, str]],
) -> dict[str, str | ConnectorError]:
    """Start (or resume) the v2 export of every pending document; key → operation URL
    (or the error that refused it).

    The operation is checkpointed, so a run killed while Microsoft prepares the
    files picks the same export up again instead of asking for a new one.
    """
    earlier = _pending_checkpoints(job.sessions)
    operations: dict[str, str | ConnectorError] = {}
    for invoice, provider, key in pending:
        if job.pc.line_item_source(invoice, provider) is not LineSource.V2:
            continue
        operation = earlier.get(key, {}).get("operation")
        if not isinstance(operation, str):
            try:
                operation = job.pc.exports.request_billed(invoice.id)
            except FATAL:
                raise
            except ApiError as exc:
                if exc.status == 403:
                    raise PermissionDeniedError(
                        f"Microsoft Graph refused the billing export of {invoice.id} (403): "
                        f"{GRANT_GRAPH_BILLING}, then run the sync again"
                    ) from exc
                log.warning("invoice %s: export request failed: %s", invoice.id, exc)
                operations[key] = exc
                continue
            except ConnectorError as exc:
                log.warning("invoice %s: export request failed: %s", invoice.id, exc)
                operations[key] = exc
                continue
            with job.sessions.begin() as session:
                mark_checkpoint(
                    session,
                    "lineitems",
                    key,
                    {"source": LineSource.V2.value, "operation": operation},
                    complete=False,
                    now=_now(),
                    run_id=job.run.run_id,
                )
        operations[key] = operation
    return operations


def _sync_lineitems(job: _Job, documents: list[Invoice]) -> None:
    done = set() if job.options.full else _complete_invoices(job.sessions)
    stored = _stored_sums(job.sessions)
    pending = []
    for document in sorted(documents, key=lambda i: (i.invoice_date, i.id)):
        for provider in document.providers or (Provider.ONE_TIME,):
            key = f"{document.id}:{provider.value}"
            if key in done:
                job.run.count("lineitems", "invoices_skipped")
                lines, total = stored.get(key, (0, Decimal(0)))
                job.proof.stored(
                    document, provider, api=None, lines=lines, line_total=total, earlier=True
                )
            else:
                pending.append((document, provider, key))
    operations = _request_exports(job, pending)
    for document, provider, key in pending:
        if job.options.stop.is_set():
            raise StopRequested("stopped between invoices")
        source = job.pc.line_item_source(document, provider)
        operation = operations.get(key)
        if isinstance(operation, ConnectorError):
            reason = f"the export could not be requested: {operation}"
            job.proof.lacking(
                Unit.LINEITEMS, key, reason, document=document, provider=provider, api=source
            )
            job.run.count("lineitems", "invoices_failed")
            continue
        _sync_document(job, (document, provider, key), operation)


def _sync_document(job: _Job, unit: tuple[Invoice, Provider, str], operation: str | None) -> None:
    """One document's lines of one provider, in one transaction: all of them or none."""
    document, provider, key = unit
    source = job.pc.line_item_source(document, provider)
    try:
        # flush_behind outlasts the commit, which writes most of what it flushes.
        with job.sessions() as session, flush_behind(session.get_bind()), session.begin():
            lines = job.pc.lines_of(document, provider, operation)
            sums: dict[str, Decimal] = {}
            count = replace_lines(
                session,
                document.id,
                provider.value,
                _watch(lines, job.options, document.id),
                job.run,
                sums,
            )
            mark_checkpoint(
                session,
                "lineitems",
                key,
                {"source": source, "lines": count},
                complete=True,
                now=_now(),
                run_id=job.run.run_id,
            )
            failpoints.reached("invoice.before_commit")
        failpoints.reached("invoice.committed")
    except FATAL:
        raise
    except (ConnectorError, RecordError) as exc:
        log.warning("invoice %s (%s): %s", document.id, provider.value, exc)
        job.proof.lacking(
            Unit.LINEITEMS, key, str(exc), document=document, provider=provider, api=source
        )
        job.run.count("lineitems", "invoices_failed")
        if isinstance(exc, RecordError):
            job.keep_aside(Unit.LINEITEMS, key, [exc])
        if operation is not None:
            # A failed or expired export is asked for afresh next time.
            with job.sessions.begin() as session:
                mark_checkpoint(
                    session,
                    "lineitems",
                    key,
                    {"source": source},
                    complete=False,
                    now=_now(),
                    run_id=job.run.run_id,
                )
        return
    total = sum(sums.values(), Decimal(0))
    job.proof.stored(document, provider, api=source, lines=count, line_total=total)
    job.run.count("lineitems", "invoices_synced")
    log.info("invoice %s %s: %d lines from %s", document.id, provider.value, count, source)


def _previous_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _invoiced(
    documents: list[Invoice], currency: str, month: tuple[date, date], complete: set[str]
) -> bool:
    """Whether the month's new-commerce invoice of ``currency`` is stored with its lines.

    Only a calendar-month ``onetime`` invoice (not an amendment, not a legacy invoice on
    the partner's anniversary cycle) bills what the month's unbilled lines showed, and
    only once its lines are in does it replace them.
    """
    return any(
        d.amends is None
        and d.currency == currency
        and d.billing_period_start == month[0]
        and Provider.ONE_TIME in (d.providers or (Provider.ONE_TIME,))
        and f"{d.id}:{Provider.ONE_TIME.value}" in complete
        for d in documents
    )


def _sync_unbilled(job: _Job, documents: list[Invoice]) -> None:
    """The current month's unbilled lines, and last month's until its invoice is here.

    Between a month's end and its invoice (up to the 8th for new commerce) last
    month's charges are neither billed nor current; without ``previous`` they
    would be invisible for those days.
    """
    previous = _previous_month(job.options.today or _now().date())
    complete = _complete_invoices(job.sessions)
    for currency in sorted({d.currency for d in documents}):
        periods = ["current"]
        if not _invoiced(documents, currency, previous, complete):
            periods.append("previous")
        else:
            with job.sessions.begin() as session:  # billed now: the invoice's lines count instead
                replace_unbilled_lines(session, currency, "previous", [], _now(), job.run)
        for period in periods:
            key = f"{currency}:{period}"
            try:
                with job.sessions.begin() as session:
                    lines = job.pc.unbilled_line_items(currency, period)
                    replace_unbilled_lines(session, currency, period, lines, _now(), job.run)
            except FATAL:
                raise
            except (ConnectorError, RecordError) as exc:
                job.proof.lacking(Unit.UNBILLED, key, str(exc))
                if isinstance(exc, RecordError):
                    job.keep_aside(Unit.UNBILLED, key, [exc])


def run_sync(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    options: SyncOptions,
    *,
    partner_center: PartnerCenter | None = None,
) -> int:
    """One sync run under the database's lock; returns the run id.

    Raises SyncIncompleteError (after recording the run as ``partial``, with what
    is missing) when some units could not be stored; what was stored is kept.
    """
    unknown = [name for name in options.only if name not in RESOURCES]
    if unknown:
        raise ConfigError(f"--only: unknown resource {unknown[0]!r}; use {', '.join(RESOURCES)}")
    with run_lock(engine, wait=options.wait):
        settle_abandoned(sessions, "sync")  # we hold the lock: no other sync is running
        params = {"only": list(options.only), "full": options.full}
        with recorded_run(sessions, "sync", options.trigger, params) as run:
            pc = partner_center or connect(
                settings.partner_center,
                correlation_id=str(uuid.uuid4()),
                sleep=_interruptible_sleep(options.stop),
            )
            proof = Completeness()
            run.completeness = proof
            try:
                _run(_Job(pc, sessions, run, options, proof))
            finally:
                run.requests = pc.http.stats.requests
                run.throttled = pc.http.stats.throttled
            if not proof.complete:
                raise SyncIncompleteError(proof.summary())
            return run.run_id


def _run(job: _Job) -> None:
    if "customers" in job.options.only:
        _sync_customers(job)
    if "subscriptions" in job.options.only:
        _sync_subscriptions(job)
    if "invoices" not in job.options.only and "lineitems" not in job.options.only:
        return
    documents = _sync_invoices(job)
    if documents is not None and "lineitems" in job.options.only:
        _sync_lineitems(job, documents)
        _sync_unbilled(job, documents)
