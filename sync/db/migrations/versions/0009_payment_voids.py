"""Payment voids: a wrong payment is kept, marked voided with who, when and why

``payments.voided_at`` / ``voided_by`` / ``void_reason``: columns rather than a
table of their own, because a payment is voided at most once and never
un-voided (a correction is a new payment under its own reference), and every
reader of payments needs one predicate (``voided_at IS NULL``) instead of a
join. The row stays, so its reference stays taken and importing the same file
again does not bring it back. Nullable: imports write payments with an explicit
column list and leave them unset.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("voided_at", sync.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("voided_by", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("void_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("void_reason")
        batch.drop_column("voided_by")
        batch.drop_column("voided_at")
