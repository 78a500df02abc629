"""Each invoice's line count and sums per customer and currency, kept beside its lines.

The checks read these instead of adding up a million lines; they are built in
the same pass that writes the lines, and can be rebuilt from the stored lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from sync.db.models import LineItem as LineItemRow
from sync.db.models import LineSum
from sync.lines.batch import Batch
from sync.lines.rows import CURRENCY, CUSTOMER, SUBTOTAL, TOTAL

__all__ = ["SumKey", "add_sums", "rebuild_line_sums", "summed", "write_sums"]

SumKey = tuple[str, str]  # customer id ("" for none), currency


def add_sums(
    sums: dict[SumKey, list[Any]], lines: Iterable[tuple[str | None, str, Decimal, Decimal]]
) -> None:
    """Count and add up (customer, currency, subtotal, total) lines per customer and currency."""
    for customer_id, currency, subtotal, total in lines:
        key = (customer_id or "", currency)
        group = sums.get(key)
        if group is None:
            sums[key] = [1, subtotal, total]
        else:
            group[0] += 1
            group[1] += subtotal
            group[2] += total


def summed(batch: Batch) -> Iterator[tuple[str | None, str, Decimal, Decimal]]:
    for row in batch.rows:
        yield row[CUSTOMER], row[CURRENCY], row[SUBTOTAL], row[TOTAL]


def write_sums(
    session: Session, invoice_id: str, provider: str, sums: dict[SumKey, list[Any]]
) -> None:
    session.execute(delete(LineSum).filter_by(invoice_id=invoice_id, provider=provider))
    if sums:
        session.execute(
            insert(LineSum),
            [
                {
                    "invoice_id": invoice_id,
                    "provider": provider,
                    "customer_id": customer,
                    "currency": currency,
                    "lines": lines,
                    "subtotal": subtotal,
                    "total_for_customer": total,
                }
                for (customer, currency), (lines, subtotal, total) in sorted(sums.items())
            ],
        )


def rebuild_line_sums(session: Session) -> int:
    """Compute every invoice's line sums again from the stored lines; the number of sums.

    For databases written before the sums existed, and to check them.
    """
    sums: dict[tuple[str, str], dict[SumKey, list[Any]]] = {}
    query = select(
        LineItemRow.invoice_id,
        LineItemRow.provider,
        LineItemRow.customer_id,
        LineItemRow.currency,
        LineItemRow.subtotal,
        LineItemRow.total_for_customer,
    )
    # Streamed: a million lines must not be held at once.
    rows = session.execute(query.execution_options(stream_results=True, yield_per=20_000))
    for invoice_id, provider, *line in rows:
        add_sums(sums.setdefault((invoice_id, provider), {}), [tuple(line)])  # type: ignore[list-item]
    session.execute(delete(LineSum))
    for (invoice_id, provider), groups in sums.items():
        write_sums(session, invoice_id, provider, groups)
    return sum(len(groups) for groups in sums.values())
