"""Getting an invoice's lines in: rows, repeat filter, sums, SQLite and PostgreSQL writers.

``replace_lines`` is the one way a billed line is stored: the connector's records
become rows (``rows``), batches go to a writer that works while the next batch is
read (``writer``: COPY on PostgreSQL, ``postgres``; multi-row INSERTs on SQLite,
``sqlite``), the same pass adds up the sums (``sums``) and remembers digests so
that repeats are numbered afterwards (``repeats``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from connectors.partner_center import LineItem
from sync.db.models import LineItem as LineItemRow
from sync.db.models import UnbilledLineItem
from sync.lines.repeats import SeenFilter, may_repeat, number_repeats
from sync.lines.rows import batches
from sync.lines.sums import SumKey, add_sums, rebuild_line_sums, summed, write_sums
from sync.lines.writer import batch_writer
from sync.runtime import failpoints
from sync.runtime.runs import RunRecorder

__all__ = ["rebuild_line_sums", "replace_lines", "replace_unbilled_lines"]


def _replace(
    session: Session,
    model: type[LineItemRow] | type[UnbilledLineItem],
    scope: Mapping[str, Any],
    lines: Iterable[LineItem],
    extra: Mapping[str, Any],
    sums: dict[SumKey, list[Any]] | None = None,
) -> int:
    """Delete the lines in ``scope``, insert ``lines`` in batches, then number their repeats.

    ``sums``, when given, collects the count and sums per customer and currency.
    """
    session.execute(delete(model).filter_by(**scope))
    count = 0
    seen = SeenFilter()
    maybe: set[str] = set()
    writer = batch_writer(session, model, bulk=model is LineItemRow)
    try:
        for batch in batches(lines, extra):
            maybe |= may_repeat(batch, seen)
            if sums is not None:
                add_sums(sums, summed(batch))
            writer.submit(batch)
            count += len(batch.rows)
            failpoints.reached("lines.batch")
    except BaseException as exc:
        writer.abort(exc)
        raise
    writer.close()
    if maybe:
        number_repeats(session, model, scope, maybe)
    return count


def replace_lines(
    session: Session,
    invoice_id: str,
    provider: str,
    lines: Iterable[LineItem],
    run: RunRecorder,
    totals: dict[str, Decimal] | None = None,
) -> int:
    """Replace an invoice's lines of one provider (and their sums) inside the caller's transaction.

    The caller commits once at the end, so a run killed half-way leaves the
    invoice's previous lines (or none) — never half an invoice. ``totals``, when
    given, receives the lines' ``totalForCustomer`` per currency.
    """
    scope = {"invoice_id": invoice_id, "provider": provider}
    sums: dict[SumKey, list[Any]] = {}
    extra = {"invoice_id": invoice_id, "run_id": run.run_id}
    count = _replace(session, LineItemRow, scope, lines, extra, sums)
    write_sums(session, invoice_id, provider, sums)
    if totals is not None:
        for (_customer, currency), (_lines, _subtotal, total) in sums.items():
            totals[currency] = totals.get(currency, Decimal(0)) + total
    run.count("lineitems", "fetched", count)
    run.count("lineitems", "inserted", count)
    return count


def replace_unbilled_lines(
    session: Session,
    currency: str,
    period: str,
    lines: Iterable[LineItem],
    now: datetime,
    run: RunRecorder,
) -> int:
    """Replace the open period's lines of one currency."""
    scope = {"currency": currency, "period": period}
    count = _replace(session, UnbilledLineItem, scope, lines, {"period": period, "synced_at": now})
    run.count("unbilled", "fetched", count)
    return count
