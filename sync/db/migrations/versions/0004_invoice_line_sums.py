"""invoice_line_sums kept with the lines; a subscription index for the reconciliation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 02:30:00
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import sync.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sums = op.create_table(
        "invoice_line_sums",
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("subtotal", sync.db.types.Money(), nullable=False),
        sa.Column("total_for_customer", sync.db.types.Money(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "provider", "customer_id", "currency"),
    )
    op.create_index(
        "ix_invoice_line_items_subscription", "invoice_line_items", ["subscription_id"]
    )
    # Lines stored before this revision get their sums now, added up exactly in Python
    # (SQLite keeps money as text; a SQL SUM there would go through floats).
    groups: dict[tuple[str, str, str, str], list[object]] = {}
    rows = op.get_bind().execute(
        sa.text(
            "SELECT invoice_id, provider, customer_id, currency, subtotal, total_for_customer "
            "FROM invoice_line_items"
        ).execution_options(stream_results=True, yield_per=20_000)
    )
    for invoice_id, provider, customer_id, currency, subtotal, total in rows:
        key = (invoice_id, provider, customer_id or "", currency)
        group = groups.setdefault(key, [0, Decimal(0), Decimal(0)])
        group[0] += 1  # type: ignore[operator]
        group[1] += Decimal(subtotal)  # type: ignore[operator]
        group[2] += Decimal(total)  # type: ignore[operator]
    if groups:
        op.bulk_insert(
            sums,
            [
                {
                    "invoice_id": invoice_id,
                    "provider": provider,
                    "customer_id": customer_id,
                    "currency": currency,
                    "lines": count,
                    "subtotal": subtotal,
                    "total_for_customer": total,
                }
                for (invoice_id, provider, customer_id, currency), (count, subtotal, total) in (
                    groups.items()
                )
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_invoice_line_items_subscription", table_name="invoice_line_items")
    op.drop_table("invoice_line_sums")
