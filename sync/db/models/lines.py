"""Invoice and unbilled reconciliation lines, and each invoice's line sums."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from connectors.partner_center.line_fields import FIELDS, Kind
from sync.db.models.base import CURRENCY, ID, Base
from sync.db.types import Money

__all__ = ["LineItem", "LineSum", "UnbilledLineItem"]


_KIND_TYPES: dict[Kind, Any] = {
    Kind.TEXT: Text,
    Kind.IDENT: Text,
    Kind.MONEY: Money,
    Kind.DAY: Date,
    Kind.BOOL: Boolean,
    Kind.JSON: JSON,
}


def _documented_columns() -> dict[str, Any]:
    """A nullable column for each documented line field with no column of pcsync's own."""
    return {f.column: mapped_column(f.column, _KIND_TYPES[f.kind](), nullable=True) for f in FIELDS}


class _LineColumns:
    """Columns shared by billed and unbilled reconciliation line items.

    The first columns are pcsync's reading of the line (the customer without
    ``org:``, the charged price, amounts with their fallbacks), which the sums and
    checks read; then one column per other documented field, as received.
    """

    provider: Mapped[str] = mapped_column(String(32))  # one_time | office | azure | …
    source: Mapped[str] = mapped_column(String(8))  # v1 | v2
    content_hash: Mapped[str] = mapped_column(String(64))
    # Microsoft may repeat an identical line; each repetition is kept once.
    occurrence: Mapped[int] = mapped_column(Integer, default=1)
    customer_id: Mapped[str | None] = mapped_column(ID)
    customer_name: Mapped[str | None] = mapped_column(String(255))
    subscription_id: Mapped[str | None] = mapped_column(ID)
    product_id: Mapped[str | None] = mapped_column(String(64))
    sku_id: Mapped[str | None] = mapped_column(String(64))
    product_name: Mapped[str | None] = mapped_column(String(255))
    charge_type: Mapped[str | None] = mapped_column(String(64))
    unit_price: Mapped[Decimal | None]
    quantity: Mapped[Decimal | None]
    billable_quantity: Mapped[Decimal | None]
    subtotal: Mapped[Decimal]
    tax_total: Mapped[Decimal]
    total_for_customer: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CURRENCY)
    charge_start_date: Mapped[date | None]
    charge_end_date: Mapped[date | None]
    # Every other documented field of a line, a column each (connectors/partner_center/
    # line_fields.py), then what Microsoft sends beyond them; see _documented_columns.
    locals().update(_documented_columns())
    # Fields Microsoft added after line_fields was written, and a documented value its column
    # cannot hold exactly (an amount sent as ""), under their keys as received; NULL if none.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LineItem(_LineColumns, Base):
    """A billed reconciliation line of a Microsoft invoice, v1 or v2, any provider."""

    __tablename__ = "invoice_line_items"
    # Few indexes: each is maintained on every one of millions of inserts. The scope index
    # grows in insertion order (an index led by a hash took a random page per insert) and
    # holds the hash, for numbering repeats (sync/lines/repeats.py); the others serve the
    # reconciliation's search for the lines that can raise a finding (sync/reconcile.py).
    # (invoice, provider, content_hash, occurrence) is unique by construction: an invoice's
    # lines are always replaced whole, and their repeats numbered 1, 2, ….
    __table_args__ = (
        Index("ix_invoice_line_items_scope", "invoice_id", "provider", "id", "content_hash"),
        Index("ix_invoice_line_items_subscription", "subscription_id"),
        Index(
            "ix_invoice_line_items_repeats",
            "invoice_id",
            sqlite_where=text("occurrence > 1"),
            postgresql_where=text("occurrence > 1"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ID)
    # The run that wrote the line; no foreign key: PostgreSQL would check it once per line
    # (migration 0006).
    run_id: Mapped[int | None] = mapped_column(Integer)


class LineSum(Base):
    """The sums of an invoice's billed lines per provider, customer and currency.

    Written with the lines, in the same transaction, so the reconciliation reads
    thousands of sums instead of millions of lines.
    """

    __tablename__ = "invoice_line_sums"

    invoice_id: Mapped[str] = mapped_column(ID, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, primary_key=True)  # "" for lines without one
    currency: Mapped[str] = mapped_column(CURRENCY, primary_key=True)
    lines: Mapped[int] = mapped_column(Integer)
    subtotal: Mapped[Decimal]
    total_for_customer: Mapped[Decimal]


class UnbilledLineItem(_LineColumns, Base):
    """A line of the open (not yet invoiced) billing period; replaced on each sync."""

    __tablename__ = "unbilled_line_items"
    __table_args__ = (  # as for billed lines
        Index(
            "ix_unbilled_line_items_scope", "period", "currency", "provider", "id", "content_hash"
        ),
        Index(
            "ix_unbilled_line_items_repeats",
            "period",
            sqlite_where=text("occurrence > 1"),
            postgresql_where=text("occurrence > 1"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16))  # current | previous
    synced_at: Mapped[datetime]
