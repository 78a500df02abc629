"""The dry run's column reader reads a file exactly as the import does, and as the row checker.

``connectors.payments.columnar.plain_batches`` (Arrow's CSV parser, checks over
columns, every row it cannot prove plainly valid handed to the row checker)
against ``PaymentFile.batches`` (Python's csv module, the import's reader):
for generated files, odd spellings included, both give the same payments
(customer, date, amount as written, minor units, currency, reference,
invoice) and the same rejected rows with the same reasons, row for row; and
both are what the row checker (``RowChecker.check``, every rule written once)
makes of each row alone.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors.payments.columnar import Codes, Columns, NotPlain, plain_batches, record_columns
from connectors.payments.files import (
    FIELDS,
    PaymentRow,
    ReadRules,
    RejectedRow,
    open_payment_file,
)
from connectors.payments.records import sniff_dialect
from connectors.payments.rows import RowChecker
from sync.payments.credit import minor_units
from tests.test_payment_fast_path import dates  # the row checker's date spellings

TENANT = "11111111-1111-1111-1111-111111111111"
KNOWN = {TENANT: TENANT, "contoso.onmicrosoft.com": TENANT}
TODAY = date(2026, 12, 4)

customers = st.sampled_from(
    [TENANT, " " + TENANT, "CONTOSO.onmicrosoft.com", "unknown.example", "", "conto\x07so",
     "x" * 300, "contoso.onmicrosoft.com\u200b"]
)  # fmt: skip
amounts = st.one_of(
    st.sampled_from(
        ["10", "10.5", "10.50", "10.505", "010", "0.5", ".5", "10.", "1 000", "1.000", "1e3",
         "NaN", "-5", "+5", "1234567890123456", "123456789012345", "99999999999999.99", "١٢٣",
         "１２３", "$10", "USD 10", " 10 ", "10\x07", "0", "0.00", "1" * 19, "9" * 18 + ".5", "",
         "1\u00a0000.00", "10 €", "999999999999999999"]
    ),
    st.text(alphabet="0123456789. -", max_size=20),
)  # fmt: skip
currencies = st.sampled_from(["USD", "usd", "JPY", "KWD", "EUR", "ABC", "US D", "", " eur "])
references = st.sampled_from(
    ["R1", " R2 ", "", "x" * 300, "a\x07b", "Ref ✓", "a\u202eb", "R 3", "R1", "r1", "R4\t"]
)
invoices = st.sampled_from(["", "G000000001", "x" * 70, "G\x07", " G2 ", "Gé"])
edges = (customers, dates, amounts, currencies, references, invoices)
plain = st.tuples(
    st.sampled_from([TENANT, "contoso.onmicrosoft.com"]),
    st.sampled_from(["2026-10-01", "2026-11-30"]),
    st.sampled_from(["10", "1234.50", "0.07", "999999999999.99", "5.5", "7"]),
    st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
    st.sampled_from(["R1", "PAY-000000001", "R2"]),
    st.sampled_from(["", "G000000001"]),
)


@st.composite
def rows(draw: st.DrawFn) -> tuple[str, ...]:
    """A plain row with none, one or two of its fields spelled otherwise, or a blank one."""
    if draw(st.integers(0, 30)) == 0:
        return ("",) * len(FIELDS)
    row = list(draw(plain))
    for field in draw(st.lists(st.integers(0, len(FIELDS) - 1), max_size=2)):
        row[field] = draw(edges[field])
    return tuple(row)


def _rows_of(batches: list[Columns], codes: Codes) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for columns in batches:
        texts = zip(
            columns.amounts.to_pylist(),
            columns.references.to_pylist(),
            columns.invoices.to_pylist(),
            strict=True,
        )
        for number, customer, day, currency, units, (amount, reference, invoice) in zip(
            columns.numbers.tolist(),
            columns.customers.tolist(),
            columns.days.tolist(),
            columns.currencies.tolist(),
            columns.units.tolist(),
            texts,
            strict=True,
        ):
            found[number] = (
                codes.customer_ids[customer],
                date.fromordinal(day).isoformat(),
                amount,
                units,
                codes.currencies[currency],
                reference,
                invoice,
            )
        for row in columns.rows:
            found[row.row] = (row.problems, row.reference, dict(row.values))
    return found


def read_both(path: Path, separator: str = ".") -> tuple[dict[int, Any], dict[int, Any], bool]:
    """The file's rows as the column reader and as the record reader read them."""
    rules = ReadRules(columns={}, today=TODAY, decimal_separator=separator)

    def resolve(text: str) -> str | None:
        return KNOWN.get(text.lower())

    with open_payment_file(path, rules, resolve) as file:
        codes = Codes()
        try:
            by_column = _rows_of(list(plain_batches(file, codes)), codes)
            was_plain = True
        except NotPlain:
            by_column, was_plain = {}, False
    with open_payment_file(path, rules, resolve) as file:
        codes = Codes()
        by_record = _rows_of([record_columns(batch, codes) for batch in file.batches()], codes)
    return by_column, by_record, was_plain


def checked_alone(picked: list[tuple[str, ...]], separator: str) -> dict[int, Any]:
    """Each row as the row checker makes it, alone (the rules as written once)."""
    rules = ReadRules(columns={}, today=TODAY, decimal_separator=separator)
    checker = RowChecker(rules, lambda text: KNOWN.get(text.lower()))
    found: dict[int, Any] = {}
    for number, row in enumerate(picked, start=2):
        if not "".join(row).strip():
            continue  # a blank row is no row
        result = checker.check(number, dict(zip(FIELDS, map(str.strip, row), strict=True)))
        if isinstance(result, PaymentRow):
            found[number] = (
                result.customer_id,
                result.payment_date.isoformat(),
                str(result.amount),
                minor_units(result.amount, result.currency),
                result.currency,
                result.reference,
                result.invoice_id or "",
            )
        else:
            assert isinstance(result, RejectedRow)
            found[number] = (result.problems, result.reference, dict(result.values))
    return found


def write(path: Path, rows: list[tuple[str, ...]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(delimiter.join(FIELDS) + "\n")
        for row in rows:
            handle.write(delimiter.join(row) + "\n")
    return path


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(rows(), min_size=1, max_size=40), st.sampled_from([".", ","]))
def test_the_column_reader_reads_every_row_as_the_import_does(
    tmp_path: Path, picked: list[tuple[str, ...]], separator: str
) -> None:
    if separator == ",":  # a decimal comma: the file is ;-separated, amounts spelled with ','
        picked = [(*row[:2], row[2].replace(".", ","), *row[3:]) for row in picked]
    path = write(tmp_path / "p.csv", picked, ";" if separator == "," else ",")
    by_column, by_record, was_plain = read_both(path, separator)
    event(f"read by column: {was_plain}")
    if was_plain:
        assert by_column == by_record
        with path.open(encoding="utf-8", newline="") as handle:
            as_written = sniff_dialect(handle).delimiter == (";" if separator == "," else ",")
        event(f"delimiter sniffed as written: {as_written}")
        if as_written:
            assert by_column == checked_alone(picked, separator)


def test_a_plain_file_is_read_by_column_and_its_plain_rows_are_taken_there(
    tmp_path: Path,
) -> None:
    """The property above compares something: a plain file does take the column reader."""
    path = write(
        tmp_path / "p.csv",
        [(TENANT, "2026-10-01", "1234.50", "USD", "R1", "G1"),
         ("contoso.onmicrosoft.com", "2026-10-02", "1000", "JPY", "R2", ""),
         ("nobody", "2026-10-02", "1000", "JPY", "R3", "")],
    )  # fmt: skip
    rules = ReadRules(columns={}, today=TODAY)
    with open_payment_file(path, rules, lambda text: KNOWN.get(text.lower())) as file:
        batches = list(plain_batches(file, Codes()))
    assert [b.numbers.tolist() for b in batches] == [[2, 3]]
    assert [row.row for row in batches[0].rows] == [4]
    assert batches[0].units.tolist() == [123450, 1000]
    by_column, by_record, was_plain = read_both(path)
    assert was_plain
    assert by_column == by_record


_ROW = f"{TENANT},2026-10-01,1.50,USD,R%05d,\n"  # every row as long (ASCII)


@pytest.mark.parametrize(
    "text",
    [
        # quotes: the record reader's rules for them are not Arrow's
        f'customer,date,amount,currency,reference,invoice\n"{TENANT}",2026-10-01,"1,234.50",USD,R1,\n',
        # a lone CR ends a line for the record reader
        f"customer,date,amount,currency,reference,invoice\n{TENANT},2026-10-01,1.50,USD,R1,\r"
        f"{TENANT},2026-10-01,2.50,USD,R2,\n",
        # a row of another width
        f"customer,date,amount,currency,reference,invoice\n{TENANT},2026-10-01,1.50,USD,R1\n",
        # the first line blank to the record reader (a no-break space), the header the second
        f"\u00a0\ncustomer,date,amount,currency,reference,invoice\n{TENANT},2026-10-01,1.50,USD,R1,\n",
        # a quoted header
        f'"customer",date,amount,currency,reference,invoice\n{TENANT},2026-10-01,1.50,USD,R1,\n',
        # the header not on the first line
        f"\ncustomer,date,amount,currency,reference,invoice\n{TENANT},2026-10-01,1.50,USD,R1,\n",
        # a byte order mark starting a row (Arrow drops one at the start of what it parses)
        f"customer,date,amount,currency,reference,invoice\n\ufeff{TENANT},2026-10-01,1.50,USD,R1,\n",
        # ... and starting the first row of the second megabyte the reader parses
        "customer,date,amount,currency,reference,invoice\n"
        + "".join(
            ("\ufeff" if n == (1 << 20) // len(_ROW % 0) else "") + _ROW % n for n in range(20_000)
        ),
        # rows ended by a lone CR only: no line end for megabytes (left at once, not buffered)
        "customer,date,amount,currency,reference,invoice\n"
        + f"{TENANT},2026-10-01,1.50,USD,R1,\r" * 40_000,
        # not UTF-8 (past the record reader's first chunk, which the header's check reads)
        "customer,date,amount,currency,reference,invoice\n"
        + f"{TENANT},2026-10-01,1.50,USD,R1,\n" * 30_000
        + f"{TENANT},2026-10-01,1.50,USD,R\udcff,\n",
    ],
)
def test_a_file_that_is_not_plain_is_left_to_the_record_reader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    rules = ReadRules(columns={}, today=TODAY)
    with (
        open_payment_file(path, rules, lambda t: KNOWN.get(t.lower())) as file,
        pytest.raises(NotPlain),
    ):
        list(plain_batches(file, Codes()))


def test_crlf_lines_blank_lines_and_a_missing_last_newline_are_plain(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(
        (
            "customer,date,amount,currency,reference,invoice\r\n\r\n"
            f"{TENANT},2026-10-01,1.50,USD,R1,\r\n\n,,,,,\n"
            f"{TENANT},2026-10-01,2.50,USD,R2,G1"
        ).encode()
    )
    by_column, by_record, was_plain = read_both(path)
    assert was_plain
    assert by_column == by_record
    assert sorted(by_column) == [3, 6]  # blank lines keep their numbers


def test_a_quoted_file_still_reads_the_same_through_the_record_reader(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(FIELDS)
        writer.writerow([TENANT, "2026-10-01", "1,234.50", "USD", "R1", ""])
    _, by_record, was_plain = read_both(path)
    assert not was_plain
    assert by_record[2][2] == "1234.50"
