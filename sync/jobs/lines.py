"""The line steps of a sync: each invoice's lines, one transaction each, then the unbilled lines."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import Invoice, LineSource, Provider
from connectors.partner_center.errors import (
    ApiError,
    ConnectorError,
    PermissionDeniedError,
    RecordError,
)
from reconciliation.currencies import WITHDRAWN
from reconciliation.errors import DataError
from reconciliation.money import tolerance
from sync.check import GRANT_GRAPH_BILLING
from sync.completeness import Unit
from sync.db.flush import flush_behind
from sync.db.models import Customer, LineSum, Subscription, SyncCheckpoint, UnbilledLineItem
from sync.jobs.job import (
    FATAL,
    StopRequested,
    _Job,
    _now,
    _watch,
    log,
)
from sync.lines import replace_lines, replace_unbilled_lines
from sync.runtime import failpoints
from sync.store import (
    mark_checkpoint,
)

__all__: list[str] = []


def _complete_invoices(sessions: sessionmaker[Session]) -> dict[str, dict[str, object]]:
    """The documents whose lines are stored: ``invoice:provider`` → its checkpoint's state."""
    with sessions() as session:
        rows = session.execute(
            select(SyncCheckpoint.key, SyncCheckpoint.state).where(
                SyncCheckpoint.resource == "lineitems", SyncCheckpoint.complete.is_(True)
            )
        )
        return {key: state or {} for key, state in rows}


def _stored_as_listed(document: Invoice, state: dict[str, object]) -> bool:
    """Whether the lines were stored from the document Microsoft lists now.

    A document whose total changed since (restated, re-issued with more or fewer
    lines) is read again. A checkpoint written before totals were kept has none to
    compare and counts as current.
    """
    kept = state.get("microsoft_total")
    return kept is None or Decimal(str(kept)) == document.total_charges


class _NoLinesServed(DataError):
    """Microsoft lists a document with a total but served none of its lines."""


def _units(document: Invoice) -> list[tuple[Provider, str]]:
    """The document's units: each provider it lists line items of, with its checkpoint key."""
    return [(p, f"{document.id}:{p.value}") for p in document.providers or (Provider.ONE_TIME,)]


def _reopen(job: _Job, session: Session, key: str, source: str) -> None:
    """The unit is read afresh next run (on v2 through a new export, none being kept)."""
    state = {"source": source}
    mark_checkpoint(
        session, "lineitems", key, state, complete=False, now=_now(), run_id=job.run.run_id
    )


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
    done = {} if job.options.full else _complete_invoices(job.sessions)
    stored = _stored_sums(job.sessions)
    pending = []
    totals: dict[str, Decimal] = {}  # the lines' total of each unit stored, now or earlier
    for document in sorted(documents, key=lambda i: (i.invoice_date, i.id)):
        for provider, key in _units(document):
            if key in done and _stored_as_listed(document, done[key]):
                job.run.count("lineitems", "invoices_skipped")
                lines, total = stored.get(key, (0, Decimal(0)))
                totals[key] = total
                job.proof.stored(
                    document, provider, api=None, lines=lines, line_total=total, earlier=True
                )
            else:
                pending.append((document, provider, key))
    operations = _request_exports(job, pending)
    if job.options.on_invoices:
        job.options.on_invoices(len(pending))
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
        else:
            read = _sync_document(job, (document, provider, key), operation)
            if read is not None:
                totals[key] = read
        if job.options.on_invoice_done:
            job.options.on_invoice_done()
    _check_totals(job, documents, totals)


def _check_totals(job: _Job, documents: list[Invoice], totals: dict[str, Decimal]) -> None:
    """A document whose lines do not add up to Microsoft's total is missing lines.

    Microsoft's total is the sum of its lines (to the currency's rounding); lines
    short of it mean an export or a page served less than Microsoft has. They stay
    stored, so reconcile can show the difference, but the document is read again
    every run until it adds up, or until finance accepts that exact difference in
    ``[billing.accepted_differences]``.
    """
    accepted = {invoice.upper(): amount for invoice, amount in job.accepted_differences.items()}
    for document in documents:
        units = _units(document)
        if not all(key in totals for _provider, key in units):
            continue  # a unit is missing already, and the run says so
        lines = sum((totals[key] for _provider, key in units), Decimal(0))
        difference = document.total_charges - lines
        if abs(difference) <= tolerance(document.currency):
            continue
        if accepted.get(document.id.upper()) == difference:
            job.run.count("lineitems", "differences_accepted")
            continue
        reason = (
            f"its lines add up to {lines} {document.currency}, Microsoft's total is "
            f"{document.total_charges}: {difference} short; stored as served and read again "
            f'next run (to accept it once checked: [billing.accepted_differences] "{document.id}" '
            f'= "{difference}")'
        )
        log.warning("invoice %s: %s", document.id, reason)
        job.proof.lacking(Unit.LINEITEMS, document.id, reason)
        job.proof.short(document.id, reason)
        with job.sessions.begin() as session:
            for provider, key in units:
                _reopen(job, session, key, job.pc.line_item_source(document, provider))


def _sync_document(
    job: _Job, unit: tuple[Invoice, Provider, str], operation: str | None
) -> Decimal | None:
    """One document's lines of one provider, in one transaction: all of them or none.

    Returns the stored lines' total, or None when they could not be stored.
    """
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
            if count == 0 and document.total_charges != 0 and len(document.providers) <= 1:
                # Not an empty invoice: its lines are not (yet) there. Whatever was stored
                # stays (the transaction is rolled back) and the next run asks again.
                raise _NoLinesServed(
                    f"Microsoft lists {document.id} with a total of {document.total_charges} "
                    f"{document.currency} but served none of its {provider.value} lines"
                )
            mark_checkpoint(
                session,
                "lineitems",
                key,
                {
                    "source": source,
                    "lines": count,
                    "microsoft_total": str(document.total_charges),
                },
                complete=True,
                now=_now(),
                run_id=job.run.run_id,
            )
            failpoints.reached("invoice.before_commit")
        failpoints.reached("invoice.committed")
    except FATAL:
        raise
    except (ConnectorError, RecordError, _NoLinesServed) as exc:
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
                _reopen(job, session, key, source)
        return None
    total = sum(sums.values(), Decimal(0))
    job.proof.stored(document, provider, api=source, lines=count, line_total=total)
    job.run.count("lineitems", "invoices_synced")
    log.info("invoice %s %s: %d lines from %s", document.id, provider.value, count, source)
    return sums.get(document.currency, Decimal(0))  # a line in another currency adds nothing


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


def _unbilled_currencies(job: _Job, documents: list[Invoice]) -> tuple[list[str], list[str]]:
    """The currencies to ask for unbilled lines — those of the invoices listed, those
    configured, and those whose unbilled lines are stored (so lines of a currency no
    longer billed are replaced by what Microsoft says now, not kept for ever) — and the
    withdrawn currencies whose stored lines are to be cleared without asking.

    Microsoft offers no list of a partner's billing currencies; before its first
    invoice in a currency (a new partner, a new market) only the configuration names it.
    Nothing accrues in a currency ISO has withdrawn (HRK since 2023): asking Microsoft
    for its open month would only be refused, run after run, and open-month lines
    stored in it (before the changeover) are open no longer.
    """
    with job.sessions() as session:
        stored = set(session.scalars(select(UnbilledLineItem.currency).distinct()))
    known = {d.currency for d in documents} | set(job.billing_currencies) | stored
    asked = sorted({c.upper() for c in known} - set(WITHDRAWN))
    return asked, sorted(c for c in stored if c.upper() in WITHDRAWN)


def _billing_subscriptions(sessions: sessionmaker[Session]) -> bool:
    """Whether a subscription Microsoft lists, of a customer it lists, is active: something
    may be accruing charges."""
    with sessions() as session:
        found = session.scalar(
            select(Subscription.id)
            .join(Customer, Customer.id == Subscription.customer_id)
            .where(
                Subscription.status == "active",
                Subscription.delisted_at.is_(None),
                Customer.delisted_at.is_(None),
            )
            .limit(1)
        )
    return found is not None


def _sync_unbilled(job: _Job, documents: list[Invoice]) -> None:
    """The current month's unbilled lines, and last month's until its invoice is here.

    Between a month's end and its invoice (up to the 8th for new commerce) last
    month's charges are neither billed nor current; without ``previous`` they
    would be invisible for those days.
    """
    previous = _previous_month(job.options.today or _now().date())
    complete = set(_complete_invoices(job.sessions))
    currencies, withdrawn = _unbilled_currencies(job, documents)
    for currency in withdrawn:
        with job.sessions.begin() as session:
            for period in ("current", "previous"):
                replace_unbilled_lines(session, currency, period, [], _now(), job.run)
    if not currencies and _billing_subscriptions(job.sessions):
        job.proof.lacking(
            Unit.UNBILLED,
            "currency",
            "no billing currency in use is known (no invoice in one yet), so no unbilled charges"
            " were read;"
            ' set [billing] currencies = ["USD", ...] to the currencies Microsoft bills you in',
        )
    for currency in currencies:
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
