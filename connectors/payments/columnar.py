"""A payment file's rows as columns: a plain CSV parsed and checked in native code (pyarrow).

A payments export is mostly plainly valid rows in a plain file. For such a
file (no quote or escape character, no NUL, line ends ``\\n`` or ``\\r\\n``,
valid UTF-8, the header alone on the first line, every line as wide as the header)
:func:`plain_batches` lets Arrow's C++ CSV reader cut the file into columns
and proves rows valid with operations over whole columns, the way
:class:`~connectors.payments.columns.ColumnChecker` does over a batch of
records: a value seen before (customer, date, currency) is looked up, not
checked again, and the rest must match strict patterns — amounts plain digits
under the decimal separator with no more decimals than the currency has,
references and invoice ids printable ASCII within their length. Every other
row goes to the row checker (:meth:`PaymentFile.check_text`), which gives the
reasons, so the rules stay written once.

A file that is not plain — or that Arrow finds is not, part way through —
raises :class:`NotPlain` and is read record by record instead
(:meth:`PaymentFile.batches`, turned into columns by :func:`columns_of`);
the caller starts again from its first row. Either way the rows come out
numbered as a spreadsheet shows them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from connectors.payments.arrays import flags, ints, strings
from connectors.payments.arrays import numbers as numpy_of
from connectors.payments.columns import ColumnChecker
from connectors.payments.files import PaymentBatch, PaymentFile, PaymentRow, RejectedRow
from connectors.payments.plain import CHUNK, LONGEST_LINE, NotPlain, plain_chunks, plain_dialect
from connectors.payments.records import blank
from connectors.payments.rows import LONGEST
from reconciliation.money import minor_unit

__all__ = [
    "BIG_UNITS",
    "Codes",
    "Columns",
    "NotPlain",
    "columns_of",
    "plain_batches",
    "record_columns",
]

_LONGEST_CELL = 100_000  # bytes; the record reader refuses fields past 131,072 characters
# In ``units``: an amount whose minor units do not fit 64 bits (``[payments] max_digits``
# allows 28 digits); a reader of the column takes such an amount from its text instead.
BIG_UNITS = np.iinfo(np.int64).min


def _units(units: Sequence[int]) -> np.ndarray[Any, Any]:
    try:
        return np.array(units, np.int64)
    except OverflowError:
        fits = range(BIG_UNITS + 1, -BIG_UNITS)
        return np.array([unit if unit in fits else BIG_UNITS for unit in units], np.int64)


_INT64_DIGITS = 18


@dataclass
class Codes:
    """Customer ids and currencies by small integer codes (a million rows name a few thousand)."""

    customer_ids: list[str] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    _customers: dict[str, int] = field(default_factory=dict)
    _currencies: dict[str, int] = field(default_factory=dict)

    def customer(self, customer_id: str) -> int:
        code = self._customers.get(customer_id)
        if code is None:
            code = self._customers[customer_id] = len(self.customer_ids)
            self.customer_ids.append(customer_id)
        return code

    def currency(self, currency: str) -> int:
        code = self._currencies.get(currency)
        if code is None:
            code = self._currencies[currency] = len(self.currencies)
            self.currencies.append(currency)
        return code


@dataclass
class Columns:
    """Consecutive rows of a file: the valid payments by column, every other row checked alone.

    ``rows`` holds the rows checked alone that are not payments
    (:class:`RejectedRow`); every valid payment is in the columns.
    """

    numbers: np.ndarray[Any, Any]  # int64: the row as a spreadsheet shows it
    customers: np.ndarray[Any, Any]  # int32 codes of customer ids (Codes)
    days: np.ndarray[Any, Any]  # int32: the payment date's ordinal
    currencies: np.ndarray[Any, Any]  # int16 codes of currencies (Codes)
    units: np.ndarray[Any, Any]  # int64: the amount in the currency's minor unit (or BIG_UNITS)
    amounts: pa.Array  # the amount as ``str(Decimal)`` writes it
    references: pa.Array
    invoices: pa.Array  # "" for none
    rows: list[RejectedRow]
    size: int = 0  # bytes of the file these rows take (0: not known)


def columns_of(
    numbers: Sequence[int],
    customer_ids: Sequence[str],
    days: Sequence[str],
    amounts: Sequence[str],
    units: Sequence[int],
    currencies: Sequence[str],
    references: Sequence[str],
    invoices: Sequence[str | None],
    codes: Codes,
    rows: list[RejectedRow],
) -> Columns:
    """Columns of payments given value by value (ISO dates, amounts as ``str(Decimal)``)."""
    size = len(numbers)
    return Columns(
        numbers=np.array(numbers, np.int64),
        customers=np.fromiter(map(codes.customer, customer_ids), np.int32, size),
        days=np.fromiter((date.fromisoformat(day).toordinal() for day in days), np.int32, size),
        currencies=np.fromiter(map(codes.currency, currencies), np.int16, size),
        units=_units(units),
        amounts=strings(amounts),
        references=strings(references),
        invoices=strings([invoice or "" for invoice in invoices]),
        rows=rows,
    )


def record_columns(batch: PaymentBatch, codes: Codes) -> Columns:
    """A batch read record by record (:meth:`PaymentFile.batches`), as columns."""
    alone = [row for row in batch.rows if type(row) is PaymentRow]
    rejected = [row for row in batch.rows if type(row) is not PaymentRow]
    return columns_of(
        [*batch.numbers, *(row.row for row in alone)],
        [*batch.customer_ids, *(row.customer_id for row in alone)],
        [*batch.dates, *(row.payment_date.isoformat() for row in alone)],
        [*batch.amounts, *(str(row.amount) for row in alone)],
        [*batch.units, *(_minor_units(row) for row in alone)],
        [*batch.currencies, *(row.currency for row in alone)],
        [*batch.references, *(row.reference for row in alone)],
        [*batch.invoice_ids, *(row.invoice_id for row in alone)],
        codes,
        rejected,
    )


def _minor_units(row: PaymentRow) -> int:
    _, digits, exponent = row.amount.as_tuple()
    assert isinstance(exponent, int)
    whole: int = int("".join(map(str, digits)) or "0") * 10 ** (exponent + minor_unit(row.currency))
    return whole


# --- reading by column -------------------------------------------------------------------------


class _Lookup:
    """A column's distinct values checked once each (by the row checker's own rules)."""

    def __init__(self, check: Any) -> None:
        self._check = check
        self._known: dict[str, int] = {}

    def codes(self, column: pa.Array, dtype: Any) -> np.ndarray[Any, Any]:
        encoded = pc.dictionary_encode(column)
        values = encoded.dictionary.to_pylist()
        known = self._known
        if len(known) > 100_000:
            known.clear()
        table = np.empty(len(values), dtype)
        for at, value in enumerate(values):
            code = known.get(value)
            if code is None:
                code = known[value] = self._check(value)
            table[at] = code
        found: np.ndarray[Any, Any] = table[numpy_of(encoded.indices)]
        return found


def _ascii_text(column: pa.Array, longest: int) -> np.ndarray[Any, Any]:
    """Printable ASCII, neither starting nor ending with a space, 1 to ``longest`` long."""
    ok = flags(pc.match_substring_regex(column, r"\A[!-~](?:[ -~]*[!-~])?\z"))
    return ok & (numpy_of(pc.binary_length(column)) <= longest)


class _Checks:
    """A record batch's plainly valid rows, by column."""

    def __init__(self, file: PaymentFile, codes: Codes) -> None:
        rules = file.rules
        self.separator = rules.decimal_separator
        self.max_digits = min(rules.max_digits, _INT64_DIGITS)
        checker = file.checker
        columns = ColumnChecker(
            parse_date=checker.parse_date,
            resolve_customer=checker.resolve,
            longest=LONGEST,
            fields=tuple(file.positions),
            decimal_separator=rules.decimal_separator,
            max_digits=rules.max_digits,
        )

        def customer(text: str) -> int:
            customer_id = columns.customer_of(text)
            return -1 if customer_id is None else codes.customer(customer_id)

        def day(text: str) -> int:
            iso = columns.date_of(text)
            return -1 if iso is None else date.fromisoformat(iso).toordinal()

        def currency(text: str) -> int:
            code = columns.currency_of(text)
            return -1 if code is None else codes.currency(code)

        self.codes = codes
        self.customers = _Lookup(customer)
        self.days = _Lookup(day)
        self.currencies = _Lookup(currency)
        escaped = "\\" + self.separator
        self.amount_pattern = rf"\A[1-9][0-9]*(?:{escaped}[0-9]+)?\z"

    def check(self, batch: pa.RecordBatch, positions: dict[str, int]) -> tuple[Any, ...]:
        """(ok mask, customers, days, currencies, units, amounts) for the batch."""
        column = {name: batch.column(at) for name, at in positions.items()}
        customers = self.customers.codes(column["customer"], np.int32)
        days = self.days.codes(column["date"], np.int32)
        currencies = self.currencies.codes(column["currency"], np.int16)
        known = np.array([minor_unit(c) for c in self.codes.currencies] + [-1], np.int64)
        places = known[currencies]  # -1 (the last) for a currency not plainly valid
        amounts = column["amount"]
        length = numpy_of(pc.binary_length(amounts)).astype(np.int64)
        ok = flags(pc.match_substring_regex(amounts, self.amount_pattern))
        at = numpy_of(pc.find_substring(amounts, self.separator))
        decimals = np.where(at >= 0, length - at - 1, 0)
        digits = length - (at >= 0)
        ok &= (
            (digits <= self.max_digits)
            & (decimals <= places)
            & (digits - decimals + places <= _INT64_DIGITS)
            & (customers >= 0)
            & (days >= 0)
        )
        ok &= _ascii_text(column["reference"], LONGEST["reference"])
        if "invoice" in column:
            invoices = column["invoice"]
            ok &= (numpy_of(pc.binary_length(invoices)) == 0) | (
                _ascii_text(invoices, LONGEST["invoice"])
            )
        taken = _rows(amounts, ok)
        whole = pc.replace_substring(taken, self.separator, "")
        value = numpy_of(pc.cast(whole, pa.int64()))
        scale = np.power(10, places[ok] - decimals[ok])
        if self.separator != ".":
            taken = pc.replace_substring(taken, self.separator, ".")
        return ok, customers, days, currencies, value * scale, taken


def _rows(column: pa.Array, ok: np.ndarray[Any, Any]) -> pa.Array:
    """The rows of ``column`` where ``ok`` (the column itself when every row is)."""
    if ok.all():
        return column
    return column.take(ints(np.flatnonzero(ok)))


def plain_batches(file: PaymentFile, codes: Codes) -> Iterator[Columns]:
    """The rows of a plain CSV file, as columns (see the module docstring); NotPlain else.

    NotPlain may come after some batches: the caller then reads the file again
    record by record, from its first row.
    """
    delimiter, special = plain_dialect(file)
    width = len(file.header)
    names = [f"c{n}" for n in range(width)]
    positions = file.positions
    longest_cell = min(_LONGEST_CELL, LONGEST_LINE // (width + 1) - 2)
    checks = _Checks(file, codes)
    read_options = pa_csv.ReadOptions(
        column_names=names, use_threads=False, block_size=2 * CHUNK + LONGEST_LINE
    )
    parse_options = pa_csv.ParseOptions(
        delimiter=delimiter,
        quote_char=False,
        double_quote=False,
        escape_char=False,
        newlines_in_values=False,
        ignore_empty_lines=False,  # an empty line is a row of empty cells: a blank row
    )
    convert_options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    number = 2  # the header is row 1
    for chunk in plain_chunks(file, delimiter, special):
        size = len(chunk)
        try:
            table = pa_csv.read_csv(
                pa.BufferReader(chunk),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as exc:  # a line of another width, above all
            raise NotPlain(str(exc)) from exc
        for batch in table.to_batches():
            if any(
                len(column) and numpy_of(pc.binary_length(column)).max() > longest_cell
                for column in batch.columns
            ):
                raise NotPlain("a cell past the record reader's limits")
            numbers = np.arange(number, number + batch.num_rows, dtype=np.int64)
            number += batch.num_rows
            columns = _columns(file, checks, batch, positions, numbers)
            columns.size, size = size, 0
            yield columns


def _columns(
    file: PaymentFile,
    checks: _Checks,
    batch: pa.RecordBatch,
    positions: dict[str, int],
    numbers: np.ndarray[Any, Any],
) -> Columns:
    ok, customers, days, currencies, units, amounts = checks.check(batch, positions)
    rows: list[RejectedRow] = []
    alone: list[PaymentRow] = []
    slow = np.flatnonzero(~ok)
    if len(slow):
        for at, record in zip(slow.tolist(), batch.take(ints(slow)).to_pylist(), strict=True):
            cells = list(record.values())
            if blank(cells):
                continue
            row = file.check_text(int(numbers[at]), [cells[p] for p in positions.values()])
            if type(row) is PaymentRow:
                alone.append(row)
            else:
                assert isinstance(row, RejectedRow)
                rows.append(row)
    invoices = (
        _rows(batch.column(positions["invoice"]), ok)
        if "invoice" in positions
        else strings([""] * int(ok.sum()))
    )
    taken = Columns(
        numbers=numbers[ok],
        customers=customers[ok],
        days=days[ok],
        currencies=currencies[ok],
        units=units,
        amounts=amounts,
        references=_rows(batch.column(positions["reference"]), ok),
        invoices=invoices,
        rows=rows,
    )
    if not alone:
        return taken
    extra = record_columns(PaymentBatch.empty()._replace(rows=alone), checks.codes)
    return Columns(
        numbers=np.concatenate([taken.numbers, extra.numbers]),
        customers=np.concatenate([taken.customers, extra.customers]),
        days=np.concatenate([taken.days, extra.days]),
        currencies=np.concatenate([taken.currencies, extra.currencies]),
        units=np.concatenate([taken.units, extra.units]),
        amounts=pa.concat_arrays([taken.amounts, extra.amounts]),
        references=pa.concat_arrays([taken.references, extra.references]),
        invoices=pa.concat_arrays([taken.invoices, extra.invoices]),
        rows=rows,
    )
