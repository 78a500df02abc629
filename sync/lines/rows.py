"""A line as a row: the columns stored for it, built once per line, a batch at a time.

The row holds pcsync's reading of the line, then every other documented field,
then ``extra``; the content hash is taken of the line's JSON text (as received
for v2 export lines), which is not stored itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from connectors.partner_center import LineItem
from connectors.partner_center.line_fields import FIELDS, SHARED, field_columns
from sync.lines.batch import Batch, Row

__all__ = [
    "CURRENCY",
    "CUSTOMER",
    "DIGEST",
    "LINE_BATCH",
    "LINE_COLUMNS",
    "SUBTOTAL",
    "TOTAL",
    "batches",
    "line_as_received",
]

# Small enough that a batch's rows stay about a MB (two batches are alive at once: one
# read, one written; 500 cost ~2.5 MB more peak memory and no less time), large enough
# to amortise a statement's overhead.
LINE_BATCH = 250

# A line's columns, in the order rows are built and written; the scope's own columns and
# the occurrence (repeats are numbered once all are stored) are the batch's constants.
LINE_COLUMNS = (
    "provider",
    "source",
    "content_hash",
    "customer_id",
    "customer_name",
    "subscription_id",
    "product_id",
    "sku_id",
    "product_name",
    "charge_type",
    "unit_price",
    "quantity",
    "billable_quantity",
    "subtotal",
    "tax_total",
    "total_for_customer",
    "currency",
    "charge_start_date",
    "charge_end_date",
    *field_columns(),  # every other documented field
    "extra",
)
DIGEST, CUSTOMER, SUBTOTAL, TOTAL, CURRENCY = (
    LINE_COLUMNS.index(name)
    for name in ("content_hash", "customer_id", "subtotal", "total_for_customer", "currency")
)


def batches(lines: Iterable[LineItem], extra: Mapping[str, Any]) -> Iterator[Batch]:
    """The lines as rows, LINE_BATCH at a time: the one pass over every line of a sync."""
    constants = (("occurrence", 1), *extra.items())
    sha256 = hashlib.sha256
    rows: list[Row] = []
    for line in lines:
        rows.append(
            (
                line.provider._value_,  # what .value returns, without its Python-level property
                line.source,
                sha256(line.raw_text.encode()).hexdigest(),
                line.customer_id,
                line.customer_name,
                line.subscription_id,
                line.product_id,
                line.sku_id,
                line.product_name,
                line.charge_type,
                line.unit_price,
                line.quantity,
                line.billable_quantity,
                line.subtotal,
                line.tax_total,
                line.total_for_customer,
                line.currency,
                line.charge_start_date,
                line.charge_end_date,
                *line.fields,
                line.extra,
            )
        )
        if len(rows) >= LINE_BATCH:
            yield Batch(LINE_COLUMNS, rows, constants)
            rows = []
    if rows:
        yield Batch(LINE_COLUMNS, rows, constants)


def line_as_received(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored line's fields under their documented keys, with ``extra``: what Microsoft sent.

    Fields sent as null are left out; a shared field holds pcsync's reading (a
    tenant id without ``org:``) unless ``extra`` keeps the value as received.
    """
    extra: Mapping[str, Any] = row["extra"] or {}
    kept = {key.lower() for key in extra}
    received = {
        field.key: row[field.column]
        for field in (*SHARED, *FIELDS)
        if field.key.lower() not in kept and row[field.column] is not None
    }
    received.update((key, value) for key, value in extra.items() if value is not None)
    return received
