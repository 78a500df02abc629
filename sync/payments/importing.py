"""``pcsync payments import``: a payment file into the database, all or nothing, in bounded memory.

The file is read a row at a time (``connectors.payments.files``) into a
temporary staging table on one connection, in batches: a million rows take
no more memory than a hundred. The database then finds what single rows
cannot show — a reference repeated in the file, one imported before with
other content, one already there — and one ``INSERT … SELECT`` copies the new
payments into ``payments`` in the same transaction as the import's record.

A file with any bad row imports nothing and lists its problems, unless the
user asks to skip bad rows (then the rejects go to ``<file>.rejected.csv``
beside it). A dry run stages nothing: :mod:`sync.payments.dryrun` finds the
same counts, problems and credit preview in memory, reading the database
only (no write lock, no temporary table). The reference makes a payment unique:
importing the same file twice adds nothing, and a reference reused with
different content is an error. Nothing is written to the database — no run,
no import record — unless payments are imported.

A voided payment keeps its reference: a row of the file that matches it is
counted as voided and stays voided (a corrected payment needs a reference of
its own). Before anything is stored, the import and its dry run list the
customers its new payments leave in credit (``sync.payments.credit``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import cast as typed
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Table, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connectors.payments.files import PaymentFile, ReadRules, open_payment_file
from reconciliation.errors import InputError
from sync.config import Settings
from sync.db.models import Customer, Payment, PaymentImport
from sync.errors import LockedError
from sync.payments.credit import ImportTally, InCredit, left_in_credit
from sync.payments.rejects import Rejects
from sync.payments.staging import (
    STAGING,
    count_rows,
    exclude_not_new,
    mark_repeats_and_conflicts,
    new_payments,
    row_problems,
    stage,
)
from sync.payments.storing import insert_new
from sync.runtime.gcpause import cycle_collection_paused
from sync.runtime.runs import recorded_run

__all__ = ["SHOWN_PROBLEMS", "ImportResult", "count_payments", "import_payments"]

_IMPORTS = typed(Table, PaymentImport.__table__)

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
        if dry_run:
            return _dry_run(
                settings, engine, path, rows, today=rules.today, skip_bad_rows=skip_bad_rows
            )
        fields = tuple(rows.fields)
        rejects = Rejects(path) if skip_bad_rows else None
        try:
            # A million rows of small, acyclic objects: the cycle collector would walk
            # the growing heap again and again for nothing (measured: up to half the time).
            with (
                cycle_collection_paused(),
                engine.connect() as connection,
                _page_cache(connection),
            ):
                try:
                    result = _import(
                        settings,
                        sessions,
                        connection,
                        path,
                        rows,
                        fields,
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
    connection.execute(text(f"DROP TABLE IF EXISTS {STAGING.name}"))
    connection.commit()


def _dry_run(
    settings: Settings,
    engine: Engine,
    path: Path,
    rows: PaymentFile,
    *,
    today: date,
    skip_bad_rows: bool,
) -> ImportResult:
    """What the import would do, found in memory (``sync.payments.dryrun``): nothing written."""
    from sync.payments.dryrun import preview  # pyarrow: loaded only by the commands using it

    with cycle_collection_paused(), engine.connect() as connection:
        try:
            found = preview(
                settings,
                connection,
                rows,
                today=today,
                shown=SHOWN_PROBLEMS,
                skip_bad_rows=skip_bad_rows,
            )
        finally:
            connection.rollback()
    if found.rejected and not skip_bad_rows:
        _raise_problems(path, [str(p) for p in found.listed], found.problems, found.rejected)
    return ImportResult(
        found.rows,
        found.new,
        found.unchanged,
        found.rejected,
        None,
        True,
        voided=found.voided,
        in_credit=found.in_credit,
    )


def _refuse(connection: Connection, path: Path, fields: tuple[str, ...], rows: int) -> None:
    """Raise the error listing the file's problems (the first ``SHOWN_PROBLEMS``)."""
    listed: list[str] = []
    problems = 0
    for problem in row_problems(connection, path.name, fields):
        problems += 1
        if len(listed) < SHOWN_PROBLEMS:
            listed.append(str(problem))
    _raise_problems(path, listed, problems, rows)


def _raise_problems(path: Path, listed: list[str], problems: int, rows: int) -> None:
    """The error listing a file's problems: the first ``SHOWN_PROBLEMS`` and how many in all."""
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
    skip_bad_rows: bool,
    rejects: Rejects | None,
    today: date,
) -> ImportResult:
    """The import proper; its dry run is :func:`_dry_run`, which stages nothing."""
    tally = ImportTally()
    stage(connection, rows.batches(), tally)
    mark_repeats_and_conflicts(connection)
    counts = count_rows(connection)
    connection.commit()  # the staging table only: temporary, this connection's own
    rejected = counts.rejected
    if rejected and not skip_bad_rows:
        _refuse(connection, path, fields, rejected)
    rejects_file = None
    if rejects is not None and counts.rejected:
        rejected = rejects.write(row_problems(connection, path.name, fields))
        connection.rollback()  # ends the read; the staging table stays
    in_credit: tuple[InCredit, ...] = ()
    if counts.new:
        exclude_not_new(connection, tally)
        in_credit = tuple(left_in_credit(connection, settings, new_payments(), tally, today))
        connection.rollback()  # ends the read; the staging table stays
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
                imported = insert_new(connection, import_id, new=counts.new)
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
