"""The staging table of a payments import: every row of the file, checked, before any is stored.

The rows go into a temporary table on the import's own connection, a batch
at a time (``COPY`` on PostgreSQL, multi-row inserts on SQLite) while the
next batch is read. The database then finds what single rows cannot show —
a reference repeated in the file, one imported before with other content,
one already there — counts the rows, lists the problems in row order and
:mod:`sync.payments.storing` copies the new payments into ``payments``. (A
dry run stages nothing: :mod:`sync.payments.dryrun`.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    Subquery,
    Table,
    Text,
    case,
    cast,
    exists,
    func,
    select,
    text,
    update,
)

from connectors.payments.files import PaymentBatch, PaymentRow, RejectedRow, RowProblem
from sync.db.models import Payment
from sync.db.types import Money
from sync.payments.credit import ImportTally, minor_units
from sync.payments.digest import batch_digests, same_payment, text_digest

__all__ = [
    "STAGING",
    "Counts",
    "count_rows",
    "exclude_not_new",
    "mark_repeats_and_conflicts",
    "new_payments",
    "row_problems",
    "stage",
]

_PAYMENTS = typed(Table, Payment.__table__)


STAGING = Table(
    "pcsync_payments_staging",
    MetaData(),
    Column("source_row", Integer, primary_key=True),
    Column("reference", Text),
    Column("customer_id", Text),
    Column("payment_date", Date),
    Column("amount", Money()),
    Column("currency", Text),
    Column("invoice_id", Text),
    Column("content_hash", Text),
    Column("problem", Text),  # "field: reason" lines; NULL for a good row
    Column("raw", Text),  # a rejected row's values as a JSON list
    Column("stored", Integer),  # 1: a good row whose reference is stored (set when storing)
    prefixes=["TEMPORARY"],
)
# what the file gives; ``stored`` is set only when the new payments are stored
_COLUMNS = tuple(column.name for column in STAGING.columns if column.name != "stored")


def _staged(row: PaymentRow | RejectedRow) -> tuple[Any, ...]:
    """A staging row; amounts and dates as text, as SQLite stores them and COPY reads them."""
    if type(row) is PaymentRow:
        number, customer_id, payment_date, amount, currency, reference, invoice_id, _ = row
        day, text_amount = payment_date.isoformat(), str(amount)
        digest = text_digest(customer_id, day, text_amount, currency, invoice_id or "")
        return (
            number,
            reference,
            customer_id,
            day,
            text_amount,
            currency,
            invoice_id,
            digest,
            None,
            None,
        )
    assert isinstance(row, RejectedRow)
    problem = "\n".join(f"{name}: {reason}" for name, reason in row.problems)
    raw = json.dumps(list(row.values.values()))
    return (row.row, row.reference, None, None, None, None, None, None, problem, raw)


def _sqlite_writer(connection: Connection) -> Any:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    width = len(_COLUMNS)
    per_statement = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width
    one = f"({', '.join('?' * width)})"
    head = f"INSERT INTO {STAGING.name} ({', '.join(_COLUMNS)}) VALUES "  # noqa: S608 - our names

    def write(rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            values = list(chain.from_iterable(part))
            driver.execute(head + ", ".join([one] * len(part)), values)

    return write


def _postgres_writer(connection: Connection) -> Any:
    driver: Any = connection.connection.driver_connection
    statement = f"COPY {STAGING.name} ({', '.join(_COLUMNS)}) FROM STDIN"

    def write(rows: list[tuple[Any, ...]]) -> None:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    return write


def _staged_batch(batch: PaymentBatch, tally: ImportTally) -> list[tuple[Any, ...]]:
    """A batch's staging rows; its payments tallied for the credit preview."""
    tally.add(
        batch.customer_ids, batch.currencies, batch.dates, batch.references, batch.amounts,
        batch.units,
    )  # fmt: skip
    staged = list(
        zip(
            batch.numbers,
            batch.references,
            batch.customer_ids,
            batch.dates,
            batch.amounts,
            batch.currencies,
            batch.invoice_ids,
            batch_digests(batch),
            repeat(None),
            repeat(None),
        )
    )
    alone = [row for row in batch.rows if type(row) is PaymentRow]
    if alone:
        tally.add(
            [row.customer_id for row in alone],
            [row.currency for row in alone],
            [row.payment_date.isoformat() for row in alone],
            [row.reference for row in alone],
            [str(row.amount) for row in alone],
            [minor_units(row.amount, row.currency) for row in alone],
        )
    staged.extend(_staged(row) for row in batch.rows)
    return staged


def stage(connection: Connection, batches: Iterable[PaymentBatch], tally: ImportTally) -> None:
    """Every row of the file into the staging table, a batch at a time."""
    connection.execute(text(f"DROP TABLE IF EXISTS {STAGING.name}"))
    STAGING.create(connection)
    dialect = connection.dialect.name
    write = _postgres_writer(connection) if dialect == "postgresql" else _sqlite_writer(connection)
    # The database stores one batch (SQLite and libpq let go of the interpreter lock)
    # while the next is read: one in flight at most, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging") as pool:
        pending: Future[None] | None = None
        for batch in batches:
            staged = _staged_batch(batch, tally)
            if pending is not None:
                pending.result()
            pending = pool.submit(write, staged)
        if pending is not None:
            pending.result()
    connection.execute(
        text(f"CREATE INDEX ix_pcsync_payments_staging_reference ON {STAGING.name} (reference)")
    )
    if dialect == "postgresql":
        connection.execute(text(f"ANALYZE {STAGING.name}"))


def exclude_not_new(connection: Connection, tally: ImportTally) -> None:
    """Take out of the tally the rows read as good that are not new payments after all."""
    s, p = STAGING, _PAYMENTS
    query = select(s.c.customer_id, s.c.currency, s.c.amount).where(
        s.c.customer_id.is_not(None),
        s.c.problem.is_not(None) | exists().where(p.c.reference == s.c.reference),
    )
    for customer_id, currency, amount in connection.execute(
        query.execution_options(stream_results=True, yield_per=10_000)
    ):
        tally.exclude(customer_id, currency, amount)


# --- what the database finds -----------------------------------------------------------


def mark_repeats_and_conflicts(connection: Connection) -> None:
    """Add the problems no single row shows: repeated references, changed payments."""
    s = STAGING
    first = s.alias("first")
    first_row = (
        select(func.min(first.c.source_row))
        .where(first.c.reference == s.c.reference)
        .scalar_subquery()
    )
    repeated = (
        select(first.c.reference)
        .where(first.c.reference.is_not(None))
        .group_by(first.c.reference)
        .having(func.count() > 1)
    )
    connection.execute(
        update(s)
        .where(s.c.reference.in_(repeated), s.c.source_row > first_row)
        .values(
            problem=func.coalesce(s.c.problem + "\n", "")
            + "reference: duplicate of row "
            + cast(first_row, Text)
        )
    )
    _mark_conflicts(connection)


def _mark_conflicts(connection: Connection) -> None:
    """A good row whose reference is stored with other content: the amount compared by value."""
    s, p = STAGING, _PAYMENTS
    rows = connection.execute(
        select(
            s.c.source_row,
            s.c.customer_id,
            s.c.payment_date,
            s.c.amount,
            s.c.currency,
            s.c.invoice_id,
            p.c.amount,
            p.c.content_hash,
        )
        .join_from(s, p, p.c.reference == s.c.reference)
        .where(s.c.problem.is_(None), p.c.content_hash != s.c.content_hash)
        .execution_options(stream_results=True, yield_per=10_000)
    )
    conflicts = [
        number
        for number, customer_id, day, amount, currency, invoice, stored, digest in rows
        if not same_payment(
            customer_id,
            day.isoformat(),
            amount,
            currency,
            invoice,
            stored_amount=stored,
            stored_digest=digest,
        )
    ]
    for start in range(0, len(conflicts), _IN_LIST):
        connection.execute(
            update(s)
            .where(s.c.source_row.in_(conflicts[start : start + _IN_LIST]))
            .values(
                problem="reference: '"
                + s.c.reference
                + "' was imported before with different content (a corrected payment needs "
                "a reference of its own)"
            )
        )


_IN_LIST = 500  # row numbers per UPDATE: within SQLite's limit of bound parameters


@dataclass(frozen=True)
class Counts:
    rows: int
    rejected: int
    unchanged: int
    voided: int

    @property
    def new(self) -> int:
        return self.rows - self.rejected - self.unchanged - self.voided


def count_rows(connection: Connection) -> Counts:
    s, p = STAGING, _PAYMENTS
    there = exists().where(p.c.reference == s.c.reference, p.c.voided_at.is_(None))
    voided = exists().where(p.c.reference == s.c.reference, p.c.voided_at.is_not(None))

    def rows_where(condition: Any) -> Any:
        return func.coalesce(func.sum(case((s.c.problem.is_(None) & condition, 1), else_=0)), 0)

    rows, rejected, unchanged, matched_voided = connection.execute(
        select(func.count(), func.count(s.c.problem), rows_where(there), rows_where(voided))
    ).one()
    return Counts(int(rows), int(rejected), int(unchanged), int(matched_voided))


def new_payments() -> Subquery:
    """The good rows whose reference is not taken: what the import stores."""
    s, p = STAGING, _PAYMENTS
    return (
        select(s.c.customer_id, s.c.currency, s.c.payment_date, s.c.amount, s.c.reference)
        .where(s.c.problem.is_(None), ~exists().where(p.c.reference == s.c.reference))
        .subquery("new_payments")
    )


def row_problems(
    connection: Connection, file: str, fields: tuple[str, ...]
) -> Iterator[RowProblem]:
    """Every problem, in row order, with the row's values (streamed)."""
    s = STAGING
    result = connection.execute(
        select(
            s.c.source_row,
            s.c.problem,
            s.c.raw,
            s.c.customer_id,
            s.c.payment_date,
            s.c.amount,
            s.c.currency,
            s.c.reference,
            s.c.invoice_id,
        )
        .where(s.c.problem.is_not(None))
        .order_by(s.c.source_row)
        .execution_options(stream_results=True, yield_per=1000)
    )
    try:
        for number, problem, raw, *stored in result:
            if raw is not None:
                values = dict(zip(fields, json.loads(raw), strict=False))
            else:
                known = dict(zip(("customer", "date", "amount", "currency", "reference",
                                  "invoice"), stored, strict=True))  # fmt: skip
                values = {name: "" if known[name] is None else str(known[name]) for name in fields}
            for line in sorted(problem.split("\n")):
                name, _, reason = line.partition(": ")
                yield RowProblem(file, number, name, reason, values)
    finally:
        result.close()
