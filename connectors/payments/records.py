"""Reading a payment file's records: CSV (any delimiter, UTF-8 with or without BOM) or XLSX.

Records come a chunk of consecutive records at a time, with their numbers as a
spreadsheet shows them (blank records keep their numbers). Memory stays
bounded whatever the file holds: a line is cut every ``_LONGEST_LINE``
characters and a record of more than ``_WIDEST`` columns stops the reading.
A file that cannot be read on raises :class:`Unreadable` with the reason.
"""

from __future__ import annotations

import csv
import functools
import zipfile
import zlib
from collections.abc import Generator, Iterator, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from itertools import islice
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import ParseError

__all__ = [
    "Cell",
    "Chunk",
    "Unreadable",
    "blank",
    "cell_text",
    "csv_chunks",
    "sniff_dialect",
    "xlsx_chunks",
]

_LONGEST_LINE = 1 << 20  # characters: a payment row is a few hundred
_WIDEST = 1000  # columns

Cell = str | Decimal | date
Record = tuple[int, list[Cell]]
Chunk = tuple[Sequence[int], list[list[Cell]]]  # consecutive records and their numbers


class Unreadable(Exception):
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


Dialect = type[csv.Dialect] | csv.Dialect


def sniff_dialect(handle: IO[str]) -> Dialect:
    """The CSV dialect of the file's first 8 KB; the handle is left at its start.

    Raises UnicodeDecodeError when those bytes are not UTF-8.
    """
    sample = handle.read(8192)
    handle.seek(0)
    try:
        return csv.Sniffer().sniff(sample, ",;\t|")
    except csv.Error:
        return csv.excel


def csv_chunks(handle: IO[str], size: int, dialect: Dialect | None = None) -> Iterator[Chunk]:
    """The file's records ``size`` at a time, blank ones included (they keep their numbers)."""
    number = 1
    records: list[list[Cell]] = []
    try:
        if dialect is None:
            dialect = sniff_dialect(handle)
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
                raise Unreadable(
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
        raise Unreadable(reason, row=number + len(records)) from exc
    except UnicodeDecodeError as exc:
        raise Unreadable(
            f"not UTF-8 text ({exc.reason}); save the file as CSV UTF-8 or as XLSX",
            row=number + len(records),
        ) from exc


def blank(record: list[Cell]) -> bool:
    return not any(record) or not "".join(map(cell_text, record)).strip()


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
        raise Unreadable(_xlsx_reason(exc), whole_file=True) from exc
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
        raise Unreadable(_xlsx_reason(exc)) from exc
    finally:
        workbook.close()


def xlsx_chunks(path: Path, size: int) -> Iterator[Chunk]:
    records = _xlsx_records(path)
    last = 0
    try:
        while True:
            chunk: list[Record] = []
            try:
                for record in islice(records, size):
                    chunk.append(record)
                    last = record[0]
            except Unreadable as exc:
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


def cell_text(cell: Cell) -> str:
    return (
        cell if isinstance(cell, str) else cell.isoformat() if isinstance(cell, date) else str(cell)
    )
