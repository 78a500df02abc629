"""Storing an import's new payments: the staging table's good rows into ``payments``, at once.

Two things make a million rows cost seconds instead of tens of seconds on
SQLite (measured with 1M rows on the 2-core machine under load):

* the rows whose reference is stored already are marked in the staging table
  first; an ``INSERT … SELECT`` whose ``SELECT`` reads the table it writes
  (``NOT EXISTS`` against ``payments``) makes SQLite set every selected row
  aside before the first is written (18 s instead of 12.6 s);
* when the import at least doubles the table, its secondary indexes (the
  customer index) are dropped and built again after the rows are in, inside the
  same transaction: filled row by row, every one of a thousand customers'
  entries goes into the middle of a 64 KB page (12.6 s; 6.3 s rebuilt). Readers
  see the table as it was, index included, until the transaction commits.

Nothing else changes: one transaction, the unique reference still refused
twice (a concurrent import of the same payments fails and is retried whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast as typed

from sqlalchemy import Connection, Table, exists, func, literal, select, update

from sync.db.models import Payment
from sync.payments.staging import STAGING

__all__ = ["REBUILD_ROWS", "insert_new"]

_PAYMENTS = typed(Table, Payment.__table__)

REBUILD_ROWS = 100_000  # fewer new payments go in row by row, indexes and all


def insert_new(connection: Connection, import_id: int, *, new: int) -> int:
    """Store the staging table's new payments (about ``new`` of them) under ``import_id``.

    Call inside the import's transaction; returns how many were stored.
    """
    s, p = STAGING, _PAYMENTS
    connection.execute(
        update(s)
        .where(s.c.problem.is_(None), exists().where(p.c.reference == s.c.reference))
        .values(stored=1)
    )
    columns = ("reference", "customer_id", "payment_date", "amount", "currency", "invoice_id")
    chosen = select(
        *(s.c[name] for name in columns),
        s.c.content_hash,
        literal(import_id),
        s.c.source_row,
    ).where(s.c.problem.is_(None), s.c.stored.is_(None))
    with _indexes_rebuilt(connection, new):
        connection.execute(
            p.insert().from_select([*columns, "content_hash", "import_id", "source_row"], chosen)
        )
    # rowcount of INSERT … SELECT is not reported by every driver (psycopg: -1)
    stored = select(func.count()).select_from(p).where(p.c.import_id == import_id)
    return int(connection.execute(stored).scalar_one())


@contextmanager
def _indexes_rebuilt(connection: Connection, new: int) -> Iterator[None]:
    """On SQLite, without the secondary indexes while a large import goes in.

    Only SQLite: there a writer's schema change is as isolated as its rows
    (readers keep their snapshot); PostgreSQL's ``DROP INDEX`` would lock out
    every reader of ``payments`` until the commit.
    """
    if connection.dialect.name != "sqlite" or new < REBUILD_ROWS:
        yield
        return
    stored = int(connection.execute(select(func.count()).select_from(_PAYMENTS)).scalar_one())
    if stored > new:
        yield
        return
    indexes = sorted(_PAYMENTS.indexes, key=lambda index: str(index.name))
    for index in indexes:
        index.drop(connection)
    yield
    # Building an index sorts in memory as large as the page cache: the staging table's
    # cache (read no more) makes room for it, so the peak stays where it was (340 MB else).
    temp = connection.exec_driver_sql("PRAGMA temp.cache_size").scalar()
    connection.exec_driver_sql("PRAGMA temp.cache_size = 0")
    try:
        for index in indexes:
            index.create(connection)
    finally:
        connection.exec_driver_sql(f"PRAGMA temp.cache_size = {int(temp or -2000)}")
