"""Line items: indexes in insertion order instead of a unique index on the content hash

A unique index led by a hash receives every new line at a random place: at a
million lines each insert rewrote a page of it, and the sync spent a third of
its time there. Lines are written by replacing a whole invoice (or period), so
pcsync numbers repeats itself (see ``sync.store``); the new scope index keeps
rows in the order they were written, with their hash alongside so repeats are
found from the index alone. Lines with a repeat number above 1 get a small
partial index for the reconciliation's duplicate check.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_REPEATS = sa.text("occurrence > 1")
# table → the columns of the scope its lines are replaced in
_SCOPES = {
    "invoice_line_items": ["invoice_id", "provider"],
    "unbilled_line_items": ["period", "currency", "provider"],
}


def _unique_name(table: str) -> str:
    # PostgreSQL shortened the longer of the names to 63 characters: ask the database.
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints(table):
        if constraint["column_names"][-2:] == ["content_hash", "occurrence"]:
            return str(constraint["name"])
    raise RuntimeError(f"{table}: no unique constraint on content_hash, occurrence")


def upgrade() -> None:
    for table, scope in _SCOPES.items():
        name = _unique_name(table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="unique")
            batch.create_index(f"ix_{table}_scope", [*scope, "id", "content_hash"])
            batch.create_index(
                f"ix_{table}_repeats",
                scope[:1],
                sqlite_where=_REPEATS,
                postgresql_where=_REPEATS,
            )


def downgrade() -> None:
    for table, scope in _SCOPES.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_repeats")
            batch.drop_index(f"ix_{table}_scope")
            batch.create_unique_constraint(
                f"uq_{table}_{'_'.join(scope)}_content_hash_occurrence"[:63],
                [*scope, "content_hash", "occurrence"],
            )
