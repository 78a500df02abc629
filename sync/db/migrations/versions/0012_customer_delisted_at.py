"""When Microsoft stopped listing a customer: ``customers.delisted_at``

A customer the partner no longer has a relationship with drops out of Partner
Center's customer list; asking for its subscriptions then answers 404 (or 403
"no commerce relationship"). A sync whose customer listing was complete sets
``delisted_at`` on every stored customer it did not list (kept from the first
run that missed it) and clears it on every customer listed again. The sync asks
subscriptions of listed customers only, so a 404 for one of those is a missing
unit, not a customer gone; collections changes no delisted customer's
subscriptions. Nullable: every customer stored before this revision is taken as
listed until the next complete listing says otherwise.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("delisted_at", sync.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("delisted_at")
