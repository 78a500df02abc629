"""invoice_line_items: drop the customer index (unused; costly on every insert)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_invoice_line_items_customer", table_name="invoice_line_items")


def downgrade() -> None:
    op.create_index(
        "ix_invoice_line_items_customer", "invoice_line_items", ["customer_id", "currency"]
    )
