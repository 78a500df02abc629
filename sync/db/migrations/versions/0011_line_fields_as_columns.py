"""Every documented line field a column of its own; only unknown fields in ``extra``

Each line stored its whole JSON (``raw``, ~1.5 KB of ~2 KB) beside the columns
pcsync reads; finance reached the other ~40 fields only through ``json_extract``.
Now every documented field of a line (``connectors/partner_center/line_fields.py``)
has a typed column (exact text, NUMERIC amounts, dates), and ``extra`` (JSON)
holds what has no documented field, under its key as received — so nothing is
lost — and ``raw`` goes.

Existing lines are moved in batches of ``_BATCH`` rows by id (never all in
memory), each read by the same reader a sync uses. A line's content hash, taken
of its JSON text, stays as it was.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

import sync.db.types
from connectors.partner_center.line_fields import FIELDS, Kind
from connectors.partner_center.line_item import read_line
from connectors.partner_center.records import UNREADABLE, Provider

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLES = ("invoice_line_items", "unbilled_line_items")
_BATCH = 2000


def _type(kind: Kind) -> Any:
    return {
        Kind.TEXT: sa.Text(),
        Kind.IDENT: sa.Text(),
        Kind.MONEY: sync.db.types.Money(),
        Kind.DAY: sa.Date(),
        Kind.BOOL: sa.Boolean(),
        Kind.JSON: sa.JSON(),
    }[kind]


def _json(value: Any) -> Any:
    from sync.lines.batch import json_text  # amounts as JSON numbers, exactly

    return json_text(value)


def _moved(raw: str, invoice_id: str, provider: str, source: str) -> dict[str, Any]:
    """A stored line's documented fields and extra, read from its JSON text."""
    try:
        record = json.loads(raw, parse_float=Decimal)
        if not isinstance(record, dict):
            raise TypeError("not an object")  # noqa: TRY301 - one fallback for every shape
        line = read_line(record, invoice_id, Provider(provider), source, raw)
    except (*UNREADABLE, json.JSONDecodeError):
        return {"extra": _json({"raw": raw})}  # kept whole: it was stored, so it stays
    moved: dict[str, Any] = {}
    for field, value in zip(FIELDS, line.fields, strict=True):
        moved[field.column] = _json(value) if field.kind is Kind.JSON else value
    moved["extra"] = _json(line.extra)
    return moved


def _move(bind: sa.Connection, name: str) -> None:
    lines = sa.table(
        name,
        sa.column("id", sa.Integer()),
        sa.column("raw", sa.Text()),
        sa.column("provider", sa.String()),
        sa.column("source", sa.String()),
        *(sa.column("invoice_id", sa.String()) for _ in [0] if name == "invoice_line_items"),
    )
    target = sa.table(
        name,
        sa.column("id", sa.Integer()),
        *(sa.column(f.column, _type(f.kind)) for f in FIELDS),
        sa.column("extra", sa.JSON()),
    )
    invoice = lines.c.invoice_id if "invoice_id" in lines.c else sa.literal("unbilled")
    statement = target.update().where(target.c.id == sa.bindparam("_id"))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(lines.c.id, lines.c.raw, invoice, lines.c.provider, lines.c.source)
            .where(lines.c.id > last)
            .order_by(lines.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            statement,
            [{"_id": row_id, **_moved(*rest)} for row_id, *rest in rows],
        )
        last = rows[-1][0]


def upgrade() -> None:
    bind = op.get_bind()
    for name in _TABLES:
        for field in FIELDS:
            op.add_column(name, sa.Column(field.column, _type(field.kind), nullable=True))
        op.add_column(name, sa.Column("extra", sa.JSON(), nullable=True))
        _move(bind, name)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("raw")


def downgrade() -> None:
    from sync.lines.rows import line_as_received

    bind = op.get_bind()
    for name in _TABLES:
        op.add_column(name, sa.Column("raw", sa.Text(), nullable=True))
        table = sa.Table(name, sa.MetaData(), autoload_with=bind)
        rows = bind.execute(sa.select(table)).mappings()
        updates = [
            {"_id": row["id"], "raw": json.dumps(line_as_received(dict(row)), default=str)}
            for row in rows
        ]
        if updates:
            bind.execute(
                table.update().where(table.c.id == sa.bindparam("_id")).values(raw=sa.bindparam("raw")),
                updates,
            )
        with op.batch_alter_table(name) as batch:
            for field in FIELDS:
                batch.drop_column(field.column)
            batch.drop_column("extra")
            batch.alter_column("raw", nullable=False)
