"""When Microsoft stopped listing a subscription: ``subscriptions.delisted_at``

``GET /v1/customers/{id}/subscriptions`` returns all of a customer's
subscriptions in one unpaged collection. One that leaves it (transferred to
another partner, purged after its deletion) is no longer the partner's: a sync
that read a customer's listing completely sets ``delisted_at`` on every stored
subscription of that customer it did not list (kept from the first run that
missed it) and clears it on every one listed again. The stored row keeps the
last status Microsoft gave; reconciliation raises no "active, not billed"
finding for a delisted subscription and collections neither suspends,
reactivates nor changes the auto-renew of one. Nullable: every subscription
stored before this revision is taken as listed until the next complete listing
of its customer says otherwise.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("delisted_at", sync.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("delisted_at")
