"""Sync jobs: Partner Center → database. The CLI and the scheduler call exactly these.

One sync run does, in order, whichever of ``customers``, ``subscriptions``,
``invoices`` and ``lineitems`` were asked for. Each unit of work commits on its
own (all customers; one customer's subscriptions; all invoices; one invoice's
lines of one provider), so a run killed at any point keeps what was finished
and the next run picks up the rest. Invoices whose lines are complete are not
fetched again unless ``full``; the open period (unbilled) is refreshed each run.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import Invoice, LineItem, PartnerCenter, Provider
from reconciliation.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ConnectorError,
    NotFoundError,
    PcsyncError,
)
from sync import failpoints
from sync.config import Settings
from sync.db.flush import flush_behind
from sync.db.models import Customer as CustomerRow
from sync.db.models import SyncCheckpoint
from sync.lock import run_lock
from sync.partner import connect
from sync.runs import RunRecorder, Trigger, recorded_run
from sync.store import (
    mark_checkpoint,
    replace_lines,
    replace_unbilled_lines,
    upsert_customers,
    upsert_invoices,
    upsert_subscriptions,
)

__all__ = ["RESOURCES", "StopRequested", "SyncIncompleteError", "SyncOptions", "run_sync"]

log = logging.getLogger(__name__)

RESOURCES = ("customers", "subscriptions", "invoices", "lineitems")
T = TypeVar("T")


class SyncIncompleteError(PcsyncError):
    """Some invoices could not be synced this time; the next run retries them."""


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


def _sync_customers(pc: PartnerCenter, sessions: sessionmaker[Session], run: RunRecorder) -> None:
    with sessions.begin() as session:
        upsert_customers(session, pc.customers(), _now(), run)


def _sync_subscriptions(
    pc: PartnerCenter, sessions: sessionmaker[Session], run: RunRecorder, options: SyncOptions
) -> None:
    with sessions() as session:
        customer_ids = list(session.scalars(select(CustomerRow.id).order_by(CustomerRow.id)))
    for customer_id in customer_ids:
        if options.stop.is_set():
            raise StopRequested("stopped between customers' subscriptions")
        try:
            subscriptions = list(pc.subscriptions(customer_id))
        except (NotFoundError, ApiError) as exc:
            if not isinstance(exc, NotFoundError) and exc.status != 403:
                raise
            # A customer whose relationship ended: keep what is stored, note it, go on.
            log.warning("customer %s: subscriptions not readable (%s)", customer_id, exc.status)
            run.count("subscriptions", "customers_skipped")
            continue
        with sessions.begin() as session:
            upsert_subscriptions(session, customer_id, subscriptions, _now(), run)


def _sync_invoices(
    pc: PartnerCenter, sessions: sessionmaker[Session], run: RunRecorder
) -> list[Invoice]:
    with sessions.begin() as session:
        return upsert_invoices(session, pc.invoices(), _now(), run)


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


def _request_exports(
    pc: PartnerCenter,
    sessions: sessionmaker[Session],
    run: RunRecorder,
    pending: list[tuple[Invoice, Provider, str]],
) -> dict[str, str]:
    """Start (or resume) the v2 export of every pending invoice; return key → operation URL.

    The operation is checkpointed, so a run killed while Microsoft prepares the
    files picks the same export up again instead of asking for a new one.
    """
    earlier = _pending_checkpoints(sessions)
    operations: dict[str, str] = {}
    for invoice, provider, key in pending:
        if pc.line_item_source(invoice, provider) != "v2":
            continue
        operation = earlier.get(key, {}).get("operation")
        if not isinstance(operation, str):
            try:
                operation = pc.exports.request_billed(invoice.id)
            except (AuthenticationError, ConfigError):
                raise
            except ConnectorError as exc:
                log.warning("invoice %s: export request failed: %s", invoice.id, exc)
                continue
            with sessions.begin() as session:
                mark_checkpoint(
                    session,
                    "lineitems",
                    key,
                    {"source": "v2", "operation": operation},
                    False,
                    _now(),
                    run.run_id,
                )
        operations[key] = operation
    return operations


def _invoice_lines(
    pc: PartnerCenter, invoice: Invoice, provider: Provider, operation: str | None
) -> Iterator[LineItem]:
    if pc.line_item_source(invoice, provider) == "v2":
        return pc.v2_line_items(invoice.id, operation)
    return pc.v1_line_items(invoice.id, provider)


def _sync_lineitems(
    pc: PartnerCenter,
    sessions: sessionmaker[Session],
    run: RunRecorder,
    options: SyncOptions,
    invoices: list[Invoice],
) -> list[str]:
    done = set() if options.full else _complete_invoices(sessions)
    pending = []
    for invoice in sorted(invoices, key=lambda i: (i.invoice_date, i.id)):
        for provider in invoice.providers or (Provider.ONE_TIME,):
            key = f"{invoice.id}:{provider.value}"
            if key in done:
                run.count("lineitems", "invoices_skipped")
            else:
                pending.append((invoice, provider, key))
    operations = _request_exports(pc, sessions, run, pending)
    failures = []
    for invoice, provider, key in pending:
        if options.stop.is_set():
            raise StopRequested("stopped between invoices")
        source = pc.line_item_source(invoice, provider)
        operation = operations.get(key)
        if source == "v2" and operation is None:
            failures.append(f"{invoice.id} (export could not be requested)")
            continue
        try:
            # flush_behind outlasts the commit, which writes most of what it flushes.
            with sessions() as session, flush_behind(session.get_bind()), session.begin():
                lines = _invoice_lines(pc, invoice, provider, operation)
                count = replace_lines(
                    session, invoice.id, provider.value, _watch(lines, options, invoice.id), run
                )
                mark_checkpoint(
                    session,
                    "lineitems",
                    key,
                    {"source": source, "lines": count},
                    True,
                    _now(),
                    run.run_id,
                )
                failpoints.reached("invoice.before_commit")
            failpoints.reached("invoice.committed")
        except (AuthenticationError, ConfigError):
            raise
        except ConnectorError as exc:
            log.warning("invoice %s (%s): %s", invoice.id, provider.value, exc)
            failures.append(f"{invoice.id} ({exc})")
            run.count("lineitems", "invoices_failed")
            if operation is not None:
                # A failed or expired export is asked for afresh next time.
                with sessions.begin() as session:
                    mark_checkpoint(
                        session, "lineitems", key, {"source": source}, False, _now(), run.run_id
                    )
            continue
        run.count("lineitems", "invoices_synced")
        log.info("invoice %s %s: %d lines from %s", invoice.id, provider.value, count, source)
    return failures


def _sync_unbilled(
    pc: PartnerCenter, sessions: sessionmaker[Session], run: RunRecorder, currencies: set[str]
) -> list[str]:
    failures = []
    for currency in sorted(currencies):
        try:
            with sessions.begin() as session:
                replace_unbilled_lines(
                    session, currency, "current", pc.unbilled_line_items(currency), _now(), run
                )
        except (AuthenticationError, ConfigError):
            raise
        except ConnectorError as exc:
            failures.append(f"unbilled {currency} ({exc})")
    return failures


def run_sync(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    options: SyncOptions,
    *,
    partner_center: PartnerCenter | None = None,
) -> int:
    """One sync run under the database's lock; returns the run id.

    Raises SyncIncompleteError (after recording the run as failed) when some
    invoices could not be fetched; what was fetched is kept.
    """
    unknown = [name for name in options.only if name not in RESOURCES]
    if unknown:
        raise ConfigError(f"--only: unknown resource {unknown[0]!r}; use {', '.join(RESOURCES)}")
    with run_lock(engine, wait=options.wait):
        params = {"only": list(options.only), "full": options.full}
        with recorded_run(sessions, "sync", options.trigger, params) as run:
            pc = partner_center or connect(
                settings.partner_center,
                correlation_id=str(uuid.uuid4()),
                sleep=_interruptible_sleep(options.stop),
            )
            try:
                failures = _run(pc, sessions, run, options)
            finally:
                run.requests = pc.http.stats.requests
                run.throttled = pc.http.stats.throttled
            if failures:
                raise SyncIncompleteError(
                    f"{len(failures)} item(s) not synced, the next run retries them: "
                    + "; ".join(failures[:3])
                    + ("; …" if len(failures) > 3 else "")
                )
            return run.run_id


def _run(
    pc: PartnerCenter, sessions: sessionmaker[Session], run: RunRecorder, options: SyncOptions
) -> list[str]:
    failures: list[str] = []
    if "customers" in options.only:
        _sync_customers(pc, sessions, run)
    if "subscriptions" in options.only:
        _sync_subscriptions(pc, sessions, run, options)
    invoices: list[Invoice] = []
    if "invoices" in options.only or "lineitems" in options.only:
        invoices = _sync_invoices(pc, sessions, run)
    if "lineitems" in options.only:
        failures += _sync_lineitems(pc, sessions, run, options, invoices)
        failures += _sync_unbilled(pc, sessions, run, {i.currency for i in invoices})
    return failures
