"""Which writer stores an invoice's lines: COPY on PostgreSQL, multi-row INSERTs on SQLite.

A large invoice is a million lines, and storing them must keep up with reading
them, so the writer works while the next batch is read:

* PostgreSQL (``sync.lines.postgres``): one COPY for the whole invoice, sent from
  a thread of ours while the server stores what it has received.
* SQLite (``sync.lines.sqlite``): multi-row INSERTs in a write-behind thread.
* Anything else (a period's unbilled lines: thousands, not millions) goes
  through its model, in the same write-behind thread.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, insert
from sqlalchemy.orm import Session

from sync.lines.batch import Batch, BatchWriter, TextValues, WriteBehind, json_text
from sync.lines.sqlite import sqlite_inserts

__all__ = ["batch_writer"]


def batch_writer(session: Session, table: Any, *, bulk: bool) -> BatchWriter:
    """A writer into ``table`` (a model) on the session's connection, in its transaction.

    ``bulk``: straight through the driver (a billed invoice's lines), else through
    the model.
    """
    connection = session.connection()
    if not bulk:
        documents = {c.name for c in table.__table__.columns if isinstance(c.type, JSON)}

        def as_dicts(batch: Batch) -> list[dict[str, Any]]:
            columns, rows = batch.full_rows()
            dicts = [dict(zip(columns, row, strict=True)) for row in rows]
            for row in dicts:
                for name in documents.intersection(row):
                    row[name] = json_text(row[name])
            return dicts

        def write(rows: list[dict[str, Any]]) -> None:
            connection.execute(insert(table), rows)

        return WriteBehind(as_dicts, write)
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        from sync.lines.postgres import CopyStream  # psycopg, loaded only for PostgreSQL

        return CopyStream(driver.cursor(), table.__tablename__, TextValues(table))
    assert connection.dialect.name == "sqlite", "bulk insert supports SQLite and PostgreSQL"
    return sqlite_inserts(driver, table)
