"""Sync completeness: quarantined records, invoice amendments, what each run proved

* ``quarantine``: a record pcsync could not read, kept with its raw payload, the
  URL it came from and the reason, so the run that met it is ``partial`` and
  finance can see exactly what is missing.
* ``invoices.amends_invoice_id``: credit notes and adjustment notes are stored as
  documents of their own (with their own lines), linked to the invoice they amend.
* ``runs.completeness``: per invoice and amendment, what a sync stored (lines,
  their sum, Microsoft's total, the API used) or why it could not.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sync.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("unit_key", sa.String(length=255), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("created_at", sync.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_quarantine_run_id_runs"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quarantine_run_id", "quarantine", ["run_id"])
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("amends_invoice_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("completeness", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("completeness")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("amends_invoice_id")
    op.drop_index("ix_quarantine_run_id", table_name="quarantine")
    op.drop_table("quarantine")
