"""Collections safety: a hash-chained audit log that refuses TRUNCATE; holds

* ``audit_log.seq`` / ``audit_log.hash``: each entry's position and sha256 over
  its canonical encoding and the previous entry's hash (sync/audit.py). Entries
  already stored are chained here, oldest first, a batch at a time.
* PostgreSQL refuses ``TRUNCATE audit_log`` too (a statement trigger: row
  triggers do not fire on TRUNCATE).
* ``collection_holds``: a customer's collections paused until a date, and why.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sync.db.types
from sync.audit import GENESIS, entry_hash

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_BATCH = 1000
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
]

_audit = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("at", sync.db.types.UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("event", sa.String()),
    sa.column("customer_id", sa.String()),
    sa.column("subscription_id", sa.String()),
    sa.column("run_id", sa.Integer()),
    sa.column("details", _JSON),
    sa.column("seq", sa.Integer()),
    sa.column("hash", sa.String()),
)


def _chain_existing_entries() -> None:
    bind = op.get_bind()
    update = (
        sa.update(_audit)
        .where(_audit.c.id == sa.bindparam("row_id"))
        .values(seq=sa.bindparam("row_seq"), hash=sa.bindparam("row_hash"))
    )
    last_id, seq, previous = 0, 0, GENESIS
    while True:
        rows = bind.execute(
            sa.select(_audit).where(_audit.c.id > last_id).order_by(_audit.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row in rows:
            seq += 1
            previous = entry_hash(
                seq,
                row.at,
                row.actor,
                row.event,
                row.customer_id,
                row.subscription_id,
                row.run_id,
                row.details or {},
                previous,
            )
            changes.append({"row_id": row.id, "row_seq": seq, "row_hash": previous})
        bind.execute(update, changes)
        last_id = rows[-1].id


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    # The append-only triggers refuse the one update that chains what is there.
    if postgres:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    _chain_existing_entries()
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_audit_log_seq", ["seq"])
    if postgres:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)

    op.create_table(
        "collection_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("held_by", sa.String(length=255), nullable=False),
        sa.Column("held_at", sync.db.types.UTCDateTime(), nullable=False),
        sa.Column("released_at", sync.db.types.UTCDateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_collection_holds"),
    )
    op.create_index("ix_collection_holds_customer_id", "collection_holds", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_collection_holds_customer_id", table_name="collection_holds")
    op.drop_table("collection_holds")
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("seq")
    if not postgres:
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)
