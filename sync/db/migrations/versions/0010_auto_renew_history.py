"""Auto-renew changes in the subscription history: whose is an auto-renew that is off

``subscription_status_history.old_auto_renew`` / ``new_auto_renew``: a sync
records a row when a subscription's status *or* its ``autoRenewEnabled``
changed, with both before and after, so collections can tell that auto-renew
pcsync turned off has stayed off since — an auto-renew someone else turned on
(even if off again later) is no longer pcsync's to turn back on, as a
suspension someone else touched is no longer pcsync's to reactivate. Columns on
the existing history rather than a table of their own: one sighting of a
subscription is one row, and the status readers add one predicate (the status
changed) instead of a union. Nullable: rows written before this revision, and
the first sight of a subscription (old values unknown), have none.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription_status_history") as batch:
        batch.add_column(sa.Column("old_auto_renew", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("new_auto_renew", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription_status_history") as batch:
        batch.drop_column("new_auto_renew")
        batch.drop_column("old_auto_renew")
