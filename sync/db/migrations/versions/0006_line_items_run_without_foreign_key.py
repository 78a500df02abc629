"""Billed line items: the run that wrote a line is recorded without a foreign key

PostgreSQL checks a foreign key with a trigger per inserted row, run after the
COPY of a whole invoice: a million lookups of the same run, about a fifth of
the server's work in a sync, done while the client waits. The run id is pcsync's
own (the run that is writing), and runs are never deleted, so the check proves
nothing the code does not already guarantee.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 06:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLE = "invoice_line_items"
_NAME = "fk_invoice_line_items_run_id_runs"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_constraint(_NAME, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.create_foreign_key(_NAME, "runs", ["run_id"], ["id"])
