"""Render report tables as CSV text and as an XLSX workbook (bytes; no files written here).

XLSX cells are real numbers with the row's currency format, dates are dates,
IDs are text; the header row is frozen with an autofilter; any text that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``,
tab or CR) is prefixed with an apostrophe so a customer's name can never run.
Control characters and escape sequences are taken out of every text cell first:
openpyxl refuses a workbook holding one, and a CSV is read in terminals too.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

from reconciliation.money import minor_unit
from reconciliation.reports.tables import Table
from reconciliation.text import printable

__all__ = ["neutralise", "to_csv", "to_xlsx"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.header for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(row.get(column.key)) for column in table.columns])
    return buffer.getvalue()


def _money_format(currency: str) -> str:
    places = minor_unit(currency)
    number = "#,##0" + ("." + "0" * places if places else "")
    return f'{number} "{currency}";-{number} "{currency}"'


def to_xlsx(tables: list[Table], title: str) -> bytes:
    """Every table as a sheet of one workbook."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    book.properties.title = printable(title)
    for table in tables:
        sheet = book.create_sheet(table.name[:31])
        sheet.append([column.header for column in table.columns])
        widths = [len(column.header) for column in table.columns]
        for row in table.rows:
            currency = str(row.get("currency") or "USD")
            cells = []
            for n, column in enumerate(table.columns):
                value = row.get(column.key)
                cells.append(_xlsx_value(value, column.kind))
                widths[n] = max(widths[n], len(_csv_cell(value)))
            sheet.append(cells)
            for n, column in enumerate(table.columns, start=1):
                cell = sheet.cell(row=sheet.max_row, column=n)
                if column.kind == "money" and cell.value is not None:
                    cell.number_format = _money_format(currency)
                elif column.kind == "date" and cell.value is not None:
                    cell.number_format = "yyyy-mm-dd"
                elif column.kind in ("id", "text"):
                    cell.number_format = "@"
        for n, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(n)].width = min(60, width + 2)
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def _xlsx_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "money" and isinstance(value, Decimal):
        # An Excel cell is a binary double; amounts are rounded to the minor unit already,
        # so the double shows the exact figure. Decimal is kept to the last moment.
        return value
    if isinstance(value, str):
        return neutralise(value)
    return value
