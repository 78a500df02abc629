"""Payment files (CSV with any delimiter, UTF-8 with or without BOM; XLSX) → checked rows, streamed.

:func:`open_payment_file` checks the header at once and then reads the rows one
at a time, so a file of a million rows takes no more memory than one of ten.
Each row comes out as a :class:`PaymentRow` or, with every reason, as a
:class:`RejectedRow`; problems name the field and what to do, and the caller
places them as ``file:row: field: reason`` — the row as a spreadsheet shows
it, the header being row 1.

Every input is bounded: amounts follow :func:`reconciliation.money.parse_amount`,
currencies are ISO 4217 codes, dates are plain ISO dates (or the configured
format) between 2000-01-01 and a year from today, no field holds a control
character or more characters than it can have. A file that cannot be read at
all (not UTF-8, a corrupt workbook, a field or line beyond any payment's size,
a duplicated or missing column) raises one :class:`InputError` naming it.
"""

from __future__ import annotations

import csv
import functools
import re
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, NamedTuple
from xml.etree.ElementTree import ParseError

from connectors.payments.columns import BATCH_ROWS, ColumnChecker, PaymentBatch
from reconciliation.currencies import MINOR_UNITS
from reconciliation.errors import InputError
from reconciliation.money import parse_amount

__all__ = [
    "EARLIEST_DATE",
    "FIELDS",
    "REQUIRED",
    "PaymentBatch",
    "PaymentFile",
    "PaymentRow",
    "ReadRules",
    "RejectedRow",
    "RowProblem",
    "open_payment_file",
]

FIELDS = ("customer", "date", "amount", "currency", "reference", "invoice")
REQUIRED = ("customer", "date", "amount", "currency", "reference")
EARLIEST_DATE = date(2000, 1, 1)

# The longest each field can be: the database's column (reference 255, an
# invoice id 64), a domain name (253), and far past any date or amount.
_LONGEST = {"customer": 255, "date": 64, "amount": 100, "currency": 16, "reference": 255}
_LONGEST_INVOICE = 64
_LONGEST_LINE = 1 << 20  # characters: a payment row is a few hundred
_WIDEST = 1000  # columns
# C0 and C1 controls, zero-width and bidirectional marks, line/paragraph separators, BOM.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class ReadRules:
    """How a payment file is read: its column names and how amounts and dates are written.

    ``columns`` maps each field to its header (matched case-insensitively);
    ``today`` bounds dates: none later than a year after it.
    """

    columns: Mapping[str, str]
    today: date
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    max_digits: int = 15

    @property
    def latest_date(self) -> date:
        """The latest payment date accepted: a year from today."""
        return self.today + timedelta(days=366)


class PaymentRow(NamedTuple):
    """One valid payment: ``customer_id`` resolved from a tenant id or primary domain.

    ``row`` is the row as a spreadsheet shows it; ``values`` the row's text by field.
    (A named tuple, not a dataclass: a file has a million of them, and a tuple is
    made in a fifth of the time.)
    """

    row: int
    customer_id: str
    payment_date: date
    amount: Decimal
    currency: str
    reference: str
    invoice_id: str | None
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that is not a valid payment: each ``(field, reason)``, and the row's text.

    ``reference`` is the row's reference when that field itself is sound, so
    that a later row repeating it is still told it is a duplicate.
    """

    row: int
    values: Mapping[str, str]
    problems: tuple[tuple[str, str], ...]
    reference: str | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a row was rejected; ``str()`` is ``file:row: field: reason``."""

    file: str
    row: int
    field: str
    reason: str
    values: Mapping[str, str] = _field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.field}: {self.reason}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


# --- reading records ------------------------------------------------------------------

Cell = str | Decimal | date
Record = tuple[int, list[Cell]]
Chunk = tuple[Sequence[int], list[list[Cell]]]  # consecutive records and their numbers


class _Unreadable(Exception):
    """The file cannot be read on from this record (or at all); ``reason`` says why."""

    def __init__(self, reason: str, *, whole_file: bool = False, row: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.whole_file = whole_file
        self.row = row  # the record at fault, when the reader knows it


def _lines(handle: IO[str]) -> Iterator[str]:
    """The file's lines, cut every ``_LONGEST_LINE`` characters so memory stays bounded
    (a longer line of a payments file is garbage: its pieces are refused as rows)."""
    return iter(functools.partial(handle.readline, _LONGEST_LINE), "")


def _csv_chunks(handle: IO[str], size: int) -> Iterator[Chunk]:
    """The file's records ``size`` at a time, blank ones included (they keep their numbers)."""
    number = 1
    records: list[list[Cell]] = []
    try:
        sample = handle.read(8192)
        handle.seek(0)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(_lines(handle), dialect)
        while True:
            records = []
            append = records.append
            for record in islice(reader, size):
                append(record)  # type: ignore[arg-type]
            if not records:
                return
            if max(map(len, records)) > _WIDEST:
                at = next(n for n, r in enumerate(records) if len(r) > _WIDEST)
                raise _Unreadable(
                    f"a row of {len(records[at])} columns; this is not a payments export",
                    row=number + at,
                )
            yield range(number, number + len(records)), records
            number += len(records)
    except csv.Error as exc:
        limit = csv.field_size_limit()
        reason = (
            f"a field longer than {limit} characters; this is not a payments export"
            if "field limit" in str(exc)
            else f"not readable as CSV ({exc})"
        )
        raise _Unreadable(reason, row=number + len(records)) from exc
    except UnicodeDecodeError as exc:
        raise _Unreadable(
            f"not UTF-8 text ({exc.reason}); save the file as CSV UTF-8 or as XLSX",
            row=number + len(records),
        ) from exc


def _blank(record: list[Cell]) -> bool:
    return not any(record) or not "".join(map(_text, record)).strip()


# A damaged workbook surfaces as any of these from zipfile, zlib, the XML parser
# or openpyxl's own checks, when opened or later while its rows are read.
_XLSX_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    ParseError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    EOFError,
    OSError,
)


# A spreadsheet keeps a number as a binary double and shows (and computes with) 15
# significant digits of it; Excel writes 0.07 as 7.0000000000000007E-2 in the file.
_SPREADSHEET = Context(prec=15, rounding=ROUND_HALF_EVEN)


def _spreadsheet_number(value: float) -> Decimal:
    """A number cell's value as the spreadsheet shows it: the double taken exactly
    (never through text), rounded to 15 significant digits, trailing zeros dropped."""
    exact = Decimal(value)
    if not exact.is_finite():
        return exact  # refused where the amount is checked
    return _SPREADSHEET.plus(exact).normalize(_SPREADSHEET)


def _xlsx_cell(value: object) -> Cell:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date | Decimal):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return _spreadsheet_number(value)
    return str(value).strip()


def _xlsx_records(path: Path) -> Generator[Record, None, None]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise _Unreadable(_xlsx_reason(exc), whole_file=True) from exc
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        # The size a sheet declares may be wrong (some exporters write A1): read all it has.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(min_row=1, values_only=True)
        for number, values in enumerate(rows, start=1):
            record = [_xlsx_cell(value) for value in values]
            if any(cell != "" for cell in record):
                yield number, record
    except _XLSX_ERRORS as exc:
        raise _Unreadable(_xlsx_reason(exc)) from exc
    finally:
        workbook.close()


def _xlsx_chunks(path: Path, size: int) -> Iterator[Chunk]:
    records = _xlsx_records(path)
    last = 0
    try:
        while True:
            chunk: list[Record] = []
            try:
                for record in islice(records, size):
                    chunk.append(record)
                    last = record[0]
            except _Unreadable as exc:
                exc.row = None if exc.whole_file else last + 1
                raise
            if not chunk:
                return
            yield [number for number, _ in chunk], [record for _, record in chunk]
    finally:
        records.close()


def _xlsx_reason(exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return f"not a readable XLSX workbook ({detail}); save it again from Excel or export it as CSV"


# --- checking rows ----------------------------------------------------------------------


def _text(cell: Cell) -> str:
    return (
        cell if isinstance(cell, str) else cell.isoformat() if isinstance(cell, date) else str(cell)
    )


class _Checker:
    """Turns one record's cells into a :class:`PaymentRow` or a :class:`RejectedRow`."""

    def __init__(self, rules: ReadRules, resolve_customer: Callable[[str], str | None]) -> None:
        self.rules = rules
        self.resolve = resolve_customer
        self.iso_only = rules.date_format == "%Y-%m-%d"
        self.latest = rules.latest_date
        self.window = f"between {EARLIEST_DATE.isoformat()} and {rules.latest_date.isoformat()}"

    def parse_date(self, cell: Cell) -> date | str:
        """The date, or why it is not one."""
        if isinstance(cell, date):
            day = cell
        else:
            text = cell.strip() if isinstance(cell, str) else str(cell)
            parsed = self._parse_date(text)
            if parsed is None:
                if self.iso_only:
                    return f"not a date: {_shown(text)} (expected YYYY-MM-DD, like 2026-11-01)"
                example = datetime(2026, 11, 1).strftime(self.rules.date_format)
                return (
                    f"not a date: {_shown(text)} (expected {self.rules.date_format}, like "
                    f"{example}, or YYYY-MM-DD)"
                )
            day = parsed
        if not EARLIEST_DATE <= day <= self.latest:
            return f"{day.isoformat()} is out of range: a payment date is {self.window}"
        return day

    def _parse_date(self, text: str) -> date | None:
        if _ISO_DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                return None
        if self.iso_only:
            try:
                return datetime.strptime(text, "%Y-%m-%d").date()  # 2026-11-1
            except ValueError:
                return None
        try:
            return datetime.strptime(text, self.rules.date_format).date()
        except ValueError:
            return None

    def check_text(self, number: int, texts: dict[str, str]) -> PaymentRow | RejectedRow:
        """A row of text cells (CSV): the common, valid row taken at once, else :meth:`check`."""
        customer = texts["customer"]
        day = texts["date"]
        currency = texts["currency"].upper()
        reference = texts["reference"]
        joined = customer + day + currency + reference + texts["amount"]
        if (
            reference
            and len(joined) < 200
            and currency in MINOR_UNITS
            and _ISO_DATE.fullmatch(day)
            and not _CONTROL.search(joined)
            and (customer_id := self.resolve(customer)) is not None
        ):
            invoice = texts.get("invoice", "")
            if len(invoice) <= _LONGEST_INVOICE and not _CONTROL.search(invoice):
                try:
                    payment_date = date.fromisoformat(day)
                    amount = parse_amount(
                        texts["amount"],
                        currency,
                        decimal_separator=self.rules.decimal_separator,
                        max_digits=self.rules.max_digits,
                    )
                except (ValueError, InputError):
                    pass
                else:
                    if EARLIEST_DATE <= payment_date <= self.latest:
                        return PaymentRow(
                            number,
                            customer_id,
                            payment_date,
                            amount,
                            currency,
                            reference,
                            invoice or None,
                            texts,
                        )
        return self.check(number, texts)  # type: ignore[arg-type]

    def check(self, number: int, cells: dict[str, Cell]) -> PaymentRow | RejectedRow:
        """Every field of one row checked; all problems reported, not only the first."""
        texts = {name: _text(cell) for name, cell in cells.items()}
        problems: list[tuple[str, str]] = []
        bad: set[str] = set()

        def refuse(name: str, reason: str) -> None:
            problems.append((name, reason))
            bad.add(name)

        joined = "".join(texts.values())
        if _CONTROL.search(joined):
            for name, text in texts.items():
                found = _CONTROL.search(text)
                if found:
                    refuse(
                        name,
                        f"contains the control character U+{ord(found.group()):04X}; remove it",
                    )
        if len(joined) > 250:
            for name, text in texts.items():
                longest = _LONGEST.get(name, _LONGEST_INVOICE)
                if len(text) > longest and name not in bad:
                    refuse(
                        name,
                        f"{len(text)} characters long, at most {longest}; is the column right?",
                    )
        for name in REQUIRED:
            if not texts.get(name) and name not in bad:
                refuse(name, "missing")
        customer_id = None
        if "customer" not in bad:
            customer_id = self.resolve(texts["customer"])
            if customer_id is None:
                refuse(
                    "customer",
                    f"unknown customer {_shown(texts['customer'])} "
                    "(use the tenant id or primary domain; run `pcsync sync` if it is new)",
                )
        payment_date: date | str = ""
        if "date" not in bad:
            payment_date = self.parse_date(cells["date"])
            if isinstance(payment_date, str):
                refuse("date", payment_date)
        currency = texts.get("currency", "").upper()
        if "currency" not in bad and currency not in MINOR_UNITS:
            refuse(
                "currency",
                f"{_shown(texts['currency'])} is not an ISO 4217 currency code (like USD, EUR)",
            )
        amount = None
        written = cells["amount"]
        if "amount" not in bad and isinstance(written, date):
            refuse("amount", f"a date ({written.isoformat()}), not an amount; is the column right?")
        elif "amount" not in bad and "currency" not in bad and not isinstance(written, date):
            try:
                amount = parse_amount(
                    written,
                    currency,
                    decimal_separator=self.rules.decimal_separator,
                    max_digits=self.rules.max_digits,
                )
            except InputError as exc:
                refuse("amount", str(exc))
        reference = texts.get("reference", "")
        if problems:
            clean = reference if reference and "reference" not in bad else None
            return RejectedRow(number, texts, tuple(problems), clean)
        assert customer_id is not None
        assert isinstance(payment_date, date)
        assert amount is not None
        return PaymentRow(
            number,
            customer_id,
            payment_date,
            amount,
            currency,
            reference,
            texts.get("invoice") or None,
            texts,
        )


# --- the file -------------------------------------------------------------------------------


class PaymentFile:
    """An open payment file whose header is checked; :meth:`batches` reads and checks its rows.

    Close it (or use it as a context manager) to release the file.
    """

    def __init__(
        self,
        path: Path,
        rules: ReadRules,
        resolve_customer: Callable[[str], str | None],
    ) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._checker = _Checker(rules, resolve_customer)
        self._number = 1
        self._chunks = self._open(path)
        self._pending: Chunk | None = None
        try:
            first = self._header_record()
            if first is None:
                raise InputError(f"{path.name}: the file is empty; expected a header row")
            self.header = tuple(_text(cell).strip() for cell in first)
            self._positions = self._map_columns(rules.columns)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path) -> Iterator[Chunk]:
        self._text_only = path.suffix.lower() not in (".xlsx", ".xlsm")
        if not self._text_only:
            if not path.exists():
                raise InputError(f"{path}: no such file")
            return _xlsx_chunks(path, BATCH_ROWS)
        return _csv_chunks(self._open_text(path), BATCH_ROWS)

    def _open_text(self, path: Path) -> IO[str]:
        try:
            self._handle = path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such file") from exc
        except IsADirectoryError as exc:
            raise InputError(f"{path}: a folder, not a payments file") from exc
        except OSError as exc:
            raise InputError(f"{path}: cannot open it ({exc.strerror})") from exc
        return self._handle

    def _next_chunk(self) -> Chunk | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        try:
            chunk = next(self._chunks, None)
        except _Unreadable as exc:
            raise self._error(exc) from exc
        if chunk is not None and chunk[0]:
            self._number = chunk[0][-1] + 1
        return chunk

    def _error(self, exc: _Unreadable) -> InputError:
        where = "" if exc.whole_file else f":{exc.row or self._number}"
        return InputError(f"{self.path.name}{where}: {exc.reason}")

    def _header_record(self) -> list[Cell] | None:
        """The first record that is not blank; the rest of its chunk is kept for the rows."""
        while (chunk := self._next_chunk()) is not None:
            numbers, records = chunk
            for at, record in enumerate(records):
                if not _blank(record):
                    self._pending = (numbers[at + 1 :], records[at + 1 :])
                    return record
        return None

    def _map_columns(self, columns: Mapping[str, str]) -> dict[str, int]:
        name = self.path.name
        index: dict[str, int] = {}
        for n, cell in enumerate(self.header):
            key = cell.lower()
            if not key:
                continue
            if key in index:
                raise InputError(
                    f"{name}:1: the header has column {cell!r} twice (columns {index[key] + 1} "
                    f"and {n + 1}); remove or rename one"
                )
            index[key] = n
        positions: dict[str, int] = {}
        for field_name in FIELDS:
            wanted = columns.get(field_name, field_name).lower()
            if wanted in index:
                positions[field_name] = index[wanted]
            elif field_name in REQUIRED:
                shown = ", ".join(_shown(h) for h in self.header[:20])
                raise InputError(
                    f"{name}:1: no column {columns.get(field_name, field_name)!r} for "
                    f"{field_name}; the header has {shown} (map it under [payments.columns])"
                )
        return positions

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the file has a column for, in ``FIELDS`` order."""
        return tuple(self._positions)

    def batches(self) -> Iterator[PaymentBatch]:
        """The rows after the header, checked, a batch of consecutive rows at a time."""
        names = tuple(self._positions)
        positions = tuple(self._positions.values())
        needed = max(positions) + 1
        pick = itemgetter(*positions)
        rules = self._checker.rules
        columns = ColumnChecker(
            parse_date=self._checker.parse_date,
            resolve_customer=self._checker.resolve,
            longest={**_LONGEST, "invoice": _LONGEST_INVOICE},
            fields=names,
            decimal_separator=rules.decimal_separator,
            max_digits=rules.max_digits,
        )
        while (chunk := self._next_chunk()) is not None:
            numbers, records = chunk
            if not records:
                continue
            if min(map(len, records)) < needed:
                records = [
                    r if len(r) >= needed else [*r, *[""] * (needed - len(r))] for r in records
                ]
            picked = list(map(pick, records))
            slow: Sequence[int]
            if self._text_only:
                batch, slow = columns.check(numbers, picked)
            else:
                batch, slow = PaymentBatch.empty(), range(len(records))
            rows = batch.rows
            for at in slow:
                if _blank(records[at]):
                    continue
                if self._text_only:
                    texts = dict(zip(names, map(str.strip, picked[at]), strict=True))
                    rows.append(self._checker.check_text(numbers[at], texts))
                else:
                    values = {
                        name: cell.strip() if isinstance(cell, str) else cell
                        for name, cell in zip(names, picked[at], strict=True)
                    }
                    rows.append(self._checker.check(numbers[at], values))
            yield batch

    def close(self) -> None:
        """Release the file."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> PaymentFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_payment_file(
    path: Path,
    rules: ReadRules,
    resolve_customer: Callable[[str], str | None],
) -> PaymentFile:
    """Open ``path`` and check its header; raise InputError if the file itself is unusable.

    ``resolve_customer`` turns a tenant id or domain into a known customer id.
    """
    return PaymentFile(path, rules, resolve_customer)
