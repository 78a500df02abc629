"""``pcsync payments import``: a payment file into the database, all or nothing, in bounded memory.

The file is read a row at a time (``connectors.payments.files``) into a
temporary staging table on one connection, in batches: a million rows take
no more memory than a hundred. The database then finds what single rows
cannot show — a reference repeated in the file, one imported before with
other content, one already there — and one ``INSERT … SELECT`` copies the new
payments into ``payments`` in the same transaction as the import's record.

A file with any bad row imports nothing and lists its problems, unless the
user asks to skip bad rows (then the rejects go to ``<file>.rejected.csv``
beside it). A dry run stops after the staging table: it takes no write lock
on the database and stores nothing. The reference makes a payment unique:
importing the same file twice adds nothing, and a reference reused with
different content is an error. Nothing is written to the database — no run,
no import record — unless payments are imported.

A voided payment keeps its reference: a row of the file that matches it is
counted as voided and stays voided (a corrected payment needs a reference of
its own). Before anything is stored, the import and its dry run list the
customers its new payments leave in credit (``sync.payment_credit``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain, repeat
from pathlib import Path
from typing import IO, Any
from typing import cast as typed
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    Subquery,
    Table,
    Text,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connectors.payments.files import (
    PaymentBatch,
    PaymentFile,
    PaymentRow,
    ReadRules,
    RejectedRow,
    RowProblem,
    open_payment_file,
)
from reconciliation.errors import InputError, LockedError
from sync.config import Settings
from sync.db.models import Customer, Payment, PaymentImport
from sync.db.types import Money
from sync.payment_credit import ImportTally, InCredit, left_in_credit, minor_units
from sync.runs import recorded_run
from sync.store import content_hash

__all__ = ["ImportResult", "count_payments", "import_payments", "payment_digest"]

_PAYMENTS = typed(Table, Payment.__table__)
_IMPORTS = typed(Table, PaymentImport.__table__)

BATCH = 10_000  # rows staged per statement group
SHOWN_PROBLEMS = 100  # problems listed in an error; the rest are counted
SQLITE_CACHE_KB = 65536  # page cache while importing: bounded, and enough for 1M rows


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, dry-run, would do)."""

    rows_read: int
    imported: int
    unchanged: int  # rows already imported, that still count
    rejected: int
    rejects_file: Path | None
    dry_run: bool
    voided: int = 0  # rows matching payments voided since: they stay voided
    in_credit: tuple[InCredit, ...] = ()  # customers the new payments leave in credit
    run_id: int | None = None  # the import's run (``payments void --import RUN``)


def _resolver(session: Session) -> dict[str, str]:
    known: dict[str, str] = {}
    for customer_id, domain in session.execute(select(Customer.id, Customer.domain)):
        known[customer_id.lower()] = customer_id
        if domain:
            known[domain.lower()] = customer_id
    return known


def payment_digest(
    customer_id: str, payment_date: date, amount: Any, currency: str, invoice_id: str | None
) -> str:
    """The content hash of a payment: what makes a reimported reference the same payment."""
    return _digest(customer_id, payment_date.isoformat(), str(amount), currency, invoice_id or "")


_PLAIN_CUSTOMERS: dict[str, bool] = {}


def _digest(customer_id: str, day: str, amount: str, currency: str, invoice: str) -> str:
    plain = _PLAIN_CUSTOMERS.get(customer_id)
    if plain is None:
        if len(_PLAIN_CUSTOMERS) > 100_000:
            _PLAIN_CUSTOMERS.clear()
        plain = _PLAIN_CUSTOMERS[customer_id] = _plain(customer_id)
    if plain and ((invoice.isalnum() and invoice.isascii()) or _plain(invoice)):
        # content_hash's canonical JSON, written out for the common case (a million rows)
        canonical = (
            f'{{"amount":"{amount}","currency":"{currency}","customer":"{customer_id}",'
            f'"date":"{day}","invoice":"{invoice}"}}'
        )
        return hashlib.sha256(canonical.encode()).hexdigest()
    return content_hash(
        {
            "customer": customer_id,
            "date": day,
            "amount": amount,
            "currency": currency,
            "invoice": invoice,
        }
    )


def _plain(value: str) -> bool:
    """Written by JSON as it is (no escapes)."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


# --- the staging table -----------------------------------------------------------------

_STAGING = Table(
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
    prefixes=["TEMPORARY"],
)
_COLUMNS = tuple(column.name for column in _STAGING.columns)


def _staged(row: PaymentRow | RejectedRow) -> tuple[Any, ...]:
    """A staging row; amounts and dates as text, as SQLite stores them and COPY reads them."""
    if type(row) is PaymentRow:
        number, customer_id, payment_date, amount, currency, reference, invoice_id, _ = row
        day, text_amount = payment_date.isoformat(), str(amount)
        digest = _digest(customer_id, day, text_amount, currency, invoice_id or "")
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
    head = f"INSERT INTO {_STAGING.name} ({', '.join(_COLUMNS)}) VALUES "  # noqa: S608 - our names

    def write(rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            values = list(chain.from_iterable(part))
            driver.execute(head + ", ".join([one] * len(part)), values)

    return write


def _postgres_writer(connection: Connection) -> Any:
    driver: Any = connection.connection.driver_connection
    statement = f"COPY {_STAGING.name} ({', '.join(_COLUMNS)}) FROM STDIN"

    def write(rows: list[tuple[Any, ...]]) -> None:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    return write


_CANONICAL = '{{"amount":"{}","currency":"{}","customer":"{}","date":"{}","invoice":"{}"}}'


def _digests(batch: PaymentBatch) -> list[str]:
    """The content hashes of a batch's payments (``_digest``, a column at a time)."""
    invoices = [invoice or "" for invoice in batch.invoice_ids]
    joined = "".join(invoices)
    customers = set(batch.customer_ids)
    if (
        joined.isascii()
        and '"' not in joined
        and "\\" not in joined
        and all(map(_plain, customers))
    ):
        # content_hash's canonical JSON: the batch's values need no escapes
        texts = map(
            _CANONICAL.format,
            batch.amounts,
            batch.currencies,
            batch.customer_ids,
            batch.dates,
            invoices,
        )
        return [hashlib.sha256(text.encode()).hexdigest() for text in texts]
    return list(
        map(_digest, batch.customer_ids, batch.dates, batch.amounts, batch.currencies, invoices)
    )


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
            _digests(batch),
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
    staged.extend(map(_staged, batch.rows))
    return staged


def _stage(connection: Connection, batches: Iterable[PaymentBatch], tally: ImportTally) -> None:
    """Every row of the file into the staging table, a batch at a time."""
    connection.execute(text(f"DROP TABLE IF EXISTS {_STAGING.name}"))
    _STAGING.create(connection)
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
        text(f"CREATE INDEX ix_pcsync_payments_staging_reference ON {_STAGING.name} (reference)")
    )
    if dialect == "postgresql":
        connection.execute(text(f"ANALYZE {_STAGING.name}"))


def _exclude_not_new(connection: Connection, tally: ImportTally) -> None:
    """Take out of the tally the rows read as good that are not new payments after all."""
    s, p = _STAGING, _PAYMENTS
    query = select(s.c.customer_id, s.c.currency, s.c.amount).where(
        s.c.customer_id.is_not(None),
        s.c.problem.is_not(None) | exists().where(p.c.reference == s.c.reference),
    )
    for customer_id, currency, amount in connection.execute(
        query.execution_options(stream_results=True, yield_per=10_000)
    ):
        tally.exclude(customer_id, currency, amount)


# --- what the database finds -----------------------------------------------------------


def _mark_repeats_and_conflicts(connection: Connection) -> None:
    """Add the problems no single row shows: repeated references, changed payments."""
    s = _STAGING
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
    p = _PAYMENTS
    connection.execute(
        update(s)
        .where(
            s.c.problem.is_(None),
            exists().where(p.c.reference == s.c.reference, p.c.content_hash != s.c.content_hash),
        )
        .values(
            problem="reference: '"
            + s.c.reference
            + "' was imported before with different content (a corrected payment needs "
            "a reference of its own)"
        )
    )


@dataclass(frozen=True)
class _Counts:
    rows: int
    rejected: int
    unchanged: int
    voided: int

    @property
    def new(self) -> int:
        return self.rows - self.rejected - self.unchanged - self.voided


def _counts(connection: Connection) -> _Counts:
    s, p = _STAGING, _PAYMENTS
    there = exists().where(p.c.reference == s.c.reference, p.c.voided_at.is_(None))
    voided = exists().where(p.c.reference == s.c.reference, p.c.voided_at.is_not(None))

    def rows_where(condition: Any) -> Any:
        return func.coalesce(func.sum(case((s.c.problem.is_(None) & condition, 1), else_=0)), 0)

    rows, rejected, unchanged, matched_voided = connection.execute(
        select(func.count(), func.count(s.c.problem), rows_where(there), rows_where(voided))
    ).one()
    return _Counts(int(rows), int(rejected), int(unchanged), int(matched_voided))


def _new_payments() -> Subquery:
    """The good rows whose reference is not taken: what the import stores."""
    s, p = _STAGING, _PAYMENTS
    return (
        select(s.c.customer_id, s.c.currency, s.c.payment_date, s.c.amount, s.c.reference)
        .where(s.c.problem.is_(None), ~exists().where(p.c.reference == s.c.reference))
        .subquery("new_payments")
    )


def _problems(connection: Connection, file: str, fields: tuple[str, ...]) -> Iterator[RowProblem]:
    """Every problem, in row order, with the row's values (streamed)."""
    s = _STAGING
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


def _insert_new(connection: Connection, import_id: int) -> int:
    s, p = _STAGING, _PAYMENTS
    columns = ("reference", "customer_id", "payment_date", "amount", "currency", "invoice_id")
    chosen = select(
        *(s.c[name] for name in columns),
        s.c.content_hash,
        literal(import_id),
        s.c.source_row,
    ).where(s.c.problem.is_(None), ~exists().where(p.c.reference == s.c.reference))
    connection.execute(
        insert(p).from_select([*columns, "content_hash", "import_id", "source_row"], chosen)
    )
    # rowcount of INSERT … SELECT is not reported by every driver (psycopg: -1)
    stored = select(func.count()).select_from(p).where(p.c.import_id == import_id)
    return int(connection.execute(stored).scalar_one())


# --- rejects -------------------------------------------------------------------------------


class _Rejects:
    """``<file>.rejected.csv``, written beside the file; opened before anything is stored
    so that a folder one cannot write to stops the import at once."""

    def __init__(self, path: Path) -> None:
        self.target = path.with_name(path.stem + ".rejected.csv")
        self._partial = self.target.with_name(self.target.name + ".partial")
        try:
            self._handle: IO[str] = self._partial.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise InputError(
                f"{self.target}: cannot write the rejects file ({exc.strerror}); run the "
                "import where the file's folder is writable, or copy the file somewhere "
                "writable first"
            ) from exc

    def write(self, problems: Iterable[RowProblem]) -> int:
        """Write one line per rejected row, all its reasons together; return the rows."""
        writer = csv.writer(self._handle)
        rows = 0
        current: list[RowProblem] = []
        for problem in problems:
            if current and problem.row != current[0].row:
                rows += self._row(writer, current)
                current = []
            current.append(problem)
        if current:
            rows += self._row(writer, current)
        return rows

    def _row(self, writer: Any, problems: list[RowProblem]) -> int:
        first = problems[0]
        if self._handle.tell() == 0:
            writer.writerow(["row", *first.values, "problem"])
        reasons = "; ".join(f"{p.field}: {p.reason}" for p in problems)
        writer.writerow([first.row, *first.values.values(), reasons])
        return 1

    def keep(self) -> Path:
        """Close the file under its final name."""
        self._handle.close()
        os.replace(self._partial, self.target)
        return self.target

    def discard(self) -> None:
        """Close and remove the file (nothing was rejected, or the import failed)."""
        self._handle.close()
        self._partial.unlink(missing_ok=True)


# --- the import ------------------------------------------------------------------------------


def _rules(settings: Settings) -> ReadRules:
    payments = settings.payments
    today = datetime.now(ZoneInfo(settings.schedule.timezone)).date()
    return ReadRules(
        columns=payments.columns.model_dump(),
        today=today,
        date_format=payments.date_format,
        decimal_separator=payments.decimal_separator,
        max_digits=payments.max_digits,
    )


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def import_payments(
    settings: Settings,
    sessions: sessionmaker[Session],
    path: Path,
    *,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
) -> ImportResult:
    """Check every row of ``path``, then store the new payments in one transaction."""
    with sessions() as session:
        known = _resolver(session)
        engine = session.get_bind()
    assert isinstance(engine, Engine)
    rules = _rules(settings)
    with open_payment_file(path, rules, lambda t: known.get(t.lower())) as rows:
        fields = tuple(rows.fields)
        rejects = _Rejects(path) if skip_bad_rows and not dry_run else None
        try:
            with engine.connect() as connection, _page_cache(connection):
                try:
                    result = _import(
                        settings,
                        sessions,
                        connection,
                        path,
                        rows,
                        fields,
                        dry_run=dry_run,
                        skip_bad_rows=skip_bad_rows,
                        rejects=rejects,
                        today=rules.today,
                    )
                finally:
                    _drop_staging(connection)
        except BaseException:
            if rejects is not None:
                rejects.discard()
            raise
    return result


@contextmanager
def _page_cache(connection: Connection) -> Iterator[None]:
    """On SQLite, a page cache large enough for a million rows' index updates.

    SQLite's default (2 MB) made storing a million payments take 8.7 s instead of
    2.3 s: each index page was read again for every few rows. The connection goes
    back to the pool with its own cache size.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    sizes = {
        schema: connection.exec_driver_sql(f"PRAGMA {schema}.cache_size").scalar()
        for schema in ("main", "temp")
    }
    for schema in sizes:
        connection.exec_driver_sql(f"PRAGMA {schema}.cache_size = -{SQLITE_CACHE_KB}")
    try:
        yield
    finally:
        for schema, size in sizes.items():
            connection.exec_driver_sql(f"PRAGMA {schema}.cache_size = {int(size or -2000)}")


def _drop_staging(connection: Connection) -> None:
    if connection.in_transaction():
        connection.rollback()
    connection.execute(text(f"DROP TABLE IF EXISTS {_STAGING.name}"))
    connection.commit()


def _refuse(connection: Connection, path: Path, fields: tuple[str, ...], rows: int) -> None:
    """Raise the error listing the file's problems (the first ``SHOWN_PROBLEMS``)."""
    listed: list[str] = []
    problems = 0
    for problem in _problems(connection, path.name, fields):
        problems += 1
        if len(listed) < SHOWN_PROBLEMS:
            listed.append(str(problem))
    if problems == 1:
        raise InputError(f"{listed[0]} (nothing imported; fix it, or use --skip-bad-rows)")
    more = f"; the first {SHOWN_PROBLEMS} are listed above" if problems > SHOWN_PROBLEMS else ""
    raise InputError(
        f"{path.name}: {problems} problem(s) in {rows} row(s), nothing imported{more} "
        "(fix them, or use --skip-bad-rows)",
        tuple(listed),
    )


def _import(
    settings: Settings,
    sessions: sessionmaker[Session],
    connection: Connection,
    path: Path,
    rows: PaymentFile,
    fields: tuple[str, ...],
    *,
    dry_run: bool,
    skip_bad_rows: bool,
    rejects: _Rejects | None,
    today: date,
) -> ImportResult:
    tally = ImportTally()
    _stage(connection, rows.batches(), tally)
    _mark_repeats_and_conflicts(connection)
    counts = _counts(connection)
    connection.commit()  # the staging table only: temporary, this connection's own
    rejected = counts.rejected
    if rejected and not skip_bad_rows:
        _refuse(connection, path, fields, rejected)
    rejects_file = None
    if rejects is not None and counts.rejected:
        rejected = rejects.write(_problems(connection, path.name, fields))
        connection.rollback()  # ends the read; the staging table stays
    in_credit: tuple[InCredit, ...] = ()
    if counts.new:
        _exclude_not_new(connection, tally)
        in_credit = tuple(left_in_credit(connection, settings, _new_payments(), tally, today))
        connection.rollback()  # ends the read; the staging table stays
    if dry_run:
        return ImportResult(
            counts.rows,
            counts.new,
            counts.unchanged,
            rejected,
            None,
            True,
            voided=counts.voided,
            in_credit=in_credit,
        )
    digest = _file_sha256(path)
    with recorded_run(sessions, "payments_import", "manual", {"file": str(path)}) as run:
        with connection.begin():
            import_id = connection.execute(
                insert(_IMPORTS)
                .values(
                    file_name=str(path),
                    file_sha256=digest,
                    imported_at=datetime.now(UTC),
                    rows_read=counts.rows,
                    rows_imported=0,
                    rows_unchanged=counts.unchanged,
                    rows_rejected=rejected,
                    run_id=run.run_id,
                )
                .returning(_IMPORTS.c.id)
            ).scalar_one()
            try:
                imported = _insert_new(connection, import_id)
            except IntegrityError as exc:
                raise LockedError(
                    f"{path.name}: another import stored some of these payments at the same "
                    "time; run this import again (it adds only what is missing)"
                ) from exc
            connection.execute(
                update(_IMPORTS).where(_IMPORTS.c.id == import_id).values(rows_imported=imported)
            )
        run.count("payments", "imported", imported)
        run.count("payments", "unchanged", counts.unchanged)
        run.count("payments", "rejected", rejected)
        if counts.voided:
            run.count("payments", "voided", counts.voided)
    if rejects is not None and rejected:
        rejects_file = rejects.keep()
    elif rejects is not None:
        rejects.discard()
    return ImportResult(
        counts.rows,
        imported,
        counts.unchanged,
        rejected,
        rejects_file,
        False,
        voided=counts.voided,
        in_credit=in_credit,
        run_id=run.run_id,
    )


def count_payments(sessions: sessionmaker[Session]) -> int:
    """How many payments are stored."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Payment)) or 0)
