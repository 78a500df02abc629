"""Payment files (CSV with any delimiter, UTF-8 with or without BOM; XLSX) → validated rows.

Every row is checked; problems are returned as values naming the file, the row
as a spreadsheet shows it (the header is row 1) and the field, so the caller
can list them all and import nothing, or skip them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from reconciliation.errors import DataError, InputError
from reconciliation.money import D, is_currency_code, minor_unit

__all__ = ["FIELDS", "PaymentFile", "PaymentRow", "RowProblem", "read_payment_file"]

FIELDS = ("customer", "date", "amount", "currency", "reference", "invoice")
REQUIRED = ("customer", "date", "amount", "currency", "reference")


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One valid payment: ``customer_id`` resolved from a tenant id or primary domain."""

    row: int
    customer_id: str
    payment_date: date
    amount: Decimal
    currency: str
    reference: str
    invoice_id: str | None
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a row was rejected; ``str()`` is ``file:row: field: reason``."""

    file: str
    row: int
    field: str
    reason: str
    values: Mapping[str, str]

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class PaymentFile:
    """What a payment file held: its header, valid rows and problems."""

    path: Path
    header: tuple[str, ...]
    rows: list[PaymentRow]
    problems: list[RowProblem]


def _csv_records(path: Path) -> Iterator[list[str]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    yield from csv.reader(io.StringIO(text), dialect)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        # A spreadsheet number is a binary double already; its shortest repr is what
        # the user typed. The amount check below refuses more decimals than the currency has.
        return repr(value)
    return str(value).strip()


def _xlsx_records(path: Path) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in values]
    finally:
        workbook.close()


def _records(path: Path) -> Iterator[list[str]]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_records(path)
    return _csv_records(path)


def _parse_date(text: str, date_format: str) -> date:
    try:
        return datetime.strptime(text, date_format).date()
    except ValueError:
        return date.fromisoformat(text)


def _validate(
    values: Mapping[str, str],
    resolve: Callable[[str], str | None],
    date_format: str,
) -> tuple[dict[str, object], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    parsed: dict[str, object] = {}
    for name in REQUIRED:
        if not values.get(name):
            problems.append((name, "missing"))
    if values.get("customer"):
        customer = resolve(values["customer"])
        if customer is None:
            problems.append(
                (
                    "customer",
                    f"unknown customer {values['customer']!r} "
                    "(use the tenant id or primary domain)",
                )
            )
        parsed["customer_id"] = customer
    if values.get("date"):
        try:
            parsed["payment_date"] = _parse_date(values["date"], date_format)
        except ValueError:
            problems.append(("date", f"not a date: {values['date']!r} (expected {date_format})"))
    currency = values.get("currency", "").upper()
    if currency and not is_currency_code(currency):
        problems.append(("currency", f"not an ISO 4217 code: {values['currency']!r}"))
    parsed["currency"] = currency
    if values.get("amount"):
        try:
            amount = D(values["amount"])
            if amount == 0:
                problems.append(("amount", "zero"))
            elif (
                currency
                and is_currency_code(currency)
                and (
                    -amount.as_tuple().exponent > minor_unit(currency)  # type: ignore[operator]
                )
            ):
                problems.append(
                    ("amount", f"{values['amount']} has more decimals than {currency} allows")
                )
            parsed["amount"] = amount
        except DataError:
            problems.append(("amount", f"not a decimal number: {values['amount']!r}"))
    return parsed, problems


def read_payment_file(
    path: Path,
    columns: Mapping[str, str],
    resolve_customer: Callable[[str], str | None],
    date_format: str = "%Y-%m-%d",
) -> PaymentFile:
    """Read and validate every row; raise InputError only if the file itself is unusable.

    ``columns`` maps each field to its header (matched case-insensitively);
    ``resolve_customer`` turns a tenant id or domain into a known customer id.
    """
    try:
        records = _records(path)
        header_row = next(records, None)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot read it as CSV or XLSX ({exc})") from exc
    if header_row is None:
        raise InputError(f"{path}: the file is empty; expected a header row")
    header = tuple(cell.strip() for cell in header_row)
    index = {cell.lower(): n for n, cell in enumerate(header)}
    positions: dict[str, int] = {}
    for name in FIELDS:
        wanted = columns.get(name, name).lower()
        if wanted in index:
            positions[name] = index[wanted]
        elif name in REQUIRED:
            raise InputError(
                f"{path}:1: no column {columns.get(name, name)!r} for {name}; the header has "
                f"{', '.join(header)} (map it under [payments.columns])"
            )
    rows: list[PaymentRow] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue
        values = {
            name: (record[pos].strip() if pos < len(record) else "")
            for name, pos in positions.items()
        }
        parsed, row_problems = _validate(values, resolve_customer, date_format)
        reference = values.get("reference", "")
        if reference and reference in seen:
            row_problems.append(("reference", f"duplicate of row {seen[reference]}"))
        elif reference:
            seen[reference] = number
        if row_problems:
            problems += [RowProblem(path.name, number, f, r, values) for f, r in row_problems]
            continue
        rows.append(
            PaymentRow(
                row=number,
                customer_id=str(parsed["customer_id"]),
                payment_date=parsed["payment_date"],  # type: ignore[arg-type]
                amount=parsed["amount"],  # type: ignore[arg-type]
                currency=str(parsed["currency"]),
                reference=reference,
                invoice_id=values.get("invoice") or None,
                values=values,
            )
        )
    return PaymentFile(path, header, rows, problems)
