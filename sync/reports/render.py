"""Render report tables as CSV text and as an XLSX workbook (bytes; no files written here).

XLSX cells are real numbers with the row's currency format, dates and times are
dates, IDs are text. Each sheet opens with a title row naming the as-of date; the
header row under it is frozen, filtered and repeated on every printed page, and
every sheet prints landscape, one page wide, with the as-of date and page numbers
in the footer. A column is as wide as the longest text it shows (an amount as
``23,251.85 USD``, not as the raw number), up to 60 characters. Any text that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``,
tab or CR) is prefixed with an apostrophe so a customer's name can never run.
Control characters and escape sequences are taken out of every text cell first:
openpyxl refuses a workbook holding one, and a CSV is read in terminals too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from reconciliation.money import minor_unit, round_money
from reconciliation.text import printable
from sync.reports.tables import Column, Table

__all__ = ["money_shown", "neutralise", "to_csv", "to_xlsx"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MAX_WIDTH = 60
_DATE_WIDTH = len("yyyy-mm-dd")
_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def neutralise(text: str) -> str:
    """Text safe to put in a spreadsheet cell: no control characters, never taken for a formula."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return neutralise(value)
    return str(value)


def to_csv(table: Table) -> str:
    """One table as CSV text (UTF-8, header row, amounts as exact decimal strings)."""
    buffer = io.StringIO()
    write_csv(buffer, table.columns, table.rows)
    return buffer.getvalue()


def write_csv(stream: IO[str], columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> None:
    """Rows as CSV on ``stream``, one at a time (for tables too big to hold)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([column.header for column in columns])
    for row in rows:
        writer.writerow([_csv_cell(row.get(column.key)) for column in columns])


def _money_format(currency: str) -> str:
    places = minor_unit(currency)
    number = "#,##0" + ("." + "0" * places if places else "")
    return f'{number} "{currency}";-{number} "{currency}"'


def money_shown(value: Decimal, currency: str) -> str:
    """An amount as a spreadsheet or a reader sees it: ``23,251.85 USD``, ``-1,000 JPY``."""
    places = minor_unit(currency)
    return f"{round_money(value, currency):,.{places}f} {currency}"


def _shown(value: Any, kind: str, currency: str) -> str:
    """The text a cell displays, to size its column by."""
    if value is None:
        return ""
    if kind == "money" and isinstance(value, Decimal):
        return money_shown(value, currency)
    if isinstance(value, datetime):
        return "0000-00-00 00:00:00"
    if isinstance(value, date):
        return "0" * _DATE_WIDTH
    if kind == "int" and isinstance(value, int):
        return f"{value:,}"
    if kind == "decimal" and isinstance(value, Decimal):
        return f"{value:,f}"
    return _csv_cell(value)


def _excel_datetime(value: datetime) -> datetime:
    # Excel has no time zones: every timestamp in the report is UTC, as its header says.
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _print_setup(sheet: Any, title: str, as_of: str, columns: int) -> None:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet["A1"] = neutralise(title)
    sheet["A1"].font = Font(bold=True, size=13)
    sheet["A1"].number_format = "@"
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A3"
    last = get_column_letter(columns)
    sheet.auto_filter.ref = f"A2:{last}{max(sheet.max_row, 2)}"
    sheet.print_title_rows = "2:2"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as it takes
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.oddFooter.left.text = f"As of {as_of}"
    sheet.oddFooter.center.text = "&A"
    sheet.oddFooter.right.text = "Page &P of &N"


def to_xlsx(tables: list[Table], title: str, as_of: str) -> bytes:
    """Every table as a sheet of one workbook; ``as_of`` goes in each sheet's title and footer."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    book.properties.title = printable(title)
    for table in tables:
        sheet = book.create_sheet(table.name[:31])
        sheet_title = f"{table.name} as of {as_of}"
        sheet.append([sheet_title])
        sheet.append([column.header for column in table.columns])
        widths = [len(column.header) for column in table.columns]
        for row in table.rows:
            currency = str(row.get("currency") or "USD")
            cells = []
            for n, column in enumerate(table.columns):
                value = row.get(column.key)
                cells.append(_xlsx_value(value, column.kind))
                widths[n] = max(widths[n], len(_shown(value, column.kind, currency)))
            sheet.append(cells)
            for n, column in enumerate(table.columns, start=1):
                cell = sheet.cell(row=sheet.max_row, column=n)
                if column.kind == "money" and cell.value is not None:
                    cell.number_format = _money_format(currency)
                elif column.kind == "datetime" and cell.value is not None:
                    cell.number_format = _DATETIME_FORMAT
                elif column.kind == "date" and cell.value is not None:
                    cell.number_format = "yyyy-mm-dd"
                elif column.kind == "int" and cell.value is not None:
                    cell.number_format = "#,##0"
                elif column.kind == "decimal" and isinstance(row.get(column.key), Decimal):
                    cell.number_format = _decimal_format(row[column.key])
                elif column.kind in ("id", "text"):
                    cell.number_format = "@"
        for n, width in enumerate(widths, start=1):
            # +2: Excel's width counts characters of its default font, and a bold header or a
            # wider digit needs the margin to show whole instead of as ###.
            sheet.column_dimensions[get_column_letter(n)].width = min(_MAX_WIDTH, width + 2)
        _print_setup(sheet, sheet_title, as_of, len(table.columns))
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def _decimal_format(value: Decimal) -> str:
    """Thousands separators and exactly the value's own decimal places (10, 1.5, 0.125)."""
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return "#,##0" + ("." + "0" * places if places else "")


def _xlsx_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "money" and isinstance(value, Decimal):
        # An Excel cell is a binary double; amounts are rounded to the minor unit already,
        # so the double shows the exact figure. Decimal is kept to the last moment.
        return value
    if isinstance(value, datetime):
        return _excel_datetime(value)
    if isinstance(value, str):
        return neutralise(value)
    return value
