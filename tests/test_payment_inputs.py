"""Every payment-file input is bounded: a bad one is one line naming the file, row and field,
exit 2, and a database left as it was (no payment, no import record, no run)."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from sync.cli import main
from sync.db.models import Payment, PaymentImport, Run
from tests.books import C1, open_books

HEADER = "customer,date,amount,currency,reference,invoice\n"


@pytest.fixture
def books(write_config, migrated):  # type: ignore[no-untyped-def]
    """Settings and sessions on a database that knows one customer."""
    return open_books(write_config, migrated, [(C1, "Contoso", "contoso.onmicrosoft.com")])


def pcsync_import(settings, path: Path, capsys, *options: str) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    code = main(["--config", str(settings.source), "payments", "import", str(path), *options])
    _, err = capsys.readouterr()
    return code, err.strip().splitlines()


def unchanged(sessions) -> bool:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return all(
            session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
            for model in (Payment, PaymentImport, Run)
        )


def one_row(tmp_path: Path, row: str, header: str = HEADER) -> Path:
    path = tmp_path / "payments.csv"
    path.write_text(header + row + "\n", encoding="utf-8")
    return path


BAD_ROWS = [
    (f"{C1},2026-11-01,12.50,ABC,P-1,", "payments.csv:2: currency: 'ABC' is not an ISO 4217"),
    (f"{C1},2026-W40-1,12.50,USD,P-1,", "payments.csv:2: date: not a date: '2026-W40-1'"),
    (f"{C1},0001-01-01,12.50,USD,P-1,", "payments.csv:2: date: 0001-01-01 is out of range"),
    (f"{C1},9999-12-31,12.50,USD,P-1,", "payments.csv:2: date: 9999-12-31 is out of range"),
    (f"{C1},20261101,12.50,USD,P-1,", "payments.csv:2: date: not a date: '20261101'"),
    (f"{C1},2026-11-01,12.50,USD,P\x00-1,", "payments.csv:2: reference: contains the control"),
    (f"\x1b[31m{C1},2026-11-01,12.50,USD,P-1,", "payments.csv:2: customer: contains the control"),
    (f"{C1},2026-11-01,12.50,USD,P-1,G\u202e1", "payments.csv:2: invoice: contains the control"),
    (f'{C1},2026-11-01,"1446,24",EUR,P-1,', "payments.csv:2: amount: '1446,24': a decimal comma"),
    (f"{C1},2026-11-01,{'9' * 31},USD,P-1,", "payments.csv:2: amount: more than 15 digits"),
    (f"{C1},2026-11-01,1e999999,USD,P-1,", "payments.csv:2: amount: '1e999999': exponent"),
    (f"{C1},2026-11-01,NaN,USD,P-1,", "payments.csv:2: amount: 'NaN': not a number"),
    (f"{C1},2026-11-01,-12.50,USD,P-1,", "payments.csv:2: amount: '-12.50' is negative"),
    (f"{C1},2026-11-01,0.00,USD,P-1,", "payments.csv:2: amount: zero"),
    (f"{C1},2026-11-01,12.50,USD,{'R' * 300},", "payments.csv:2: reference: 300 characters long"),
]


@pytest.mark.parametrize(("row", "error"), BAD_ROWS)
def test_a_bad_value_is_one_line_exit_2_and_nothing_stored(
    books, tmp_path, capsys, row: str, error: str
) -> None:
    settings, sessions = books
    code, lines = pcsync_import(settings, one_row(tmp_path, row), capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"pcsync: error: {error}"), lines[0]
    assert lines[0].endswith("(nothing imported; fix it, or use --skip-bad-rows)")
    assert "\x00" not in lines[0]
    assert "\x1b" not in lines[0]
    assert unchanged(sessions)


def test_a_duplicate_header_is_refused(books, tmp_path, capsys) -> None:
    settings, sessions = books
    header = "customer,date,amount,currency,reference,Amount\n"
    path = one_row(tmp_path, f"{C1},2026-11-01,12.50,USD,P-1,13", header)
    code, lines = pcsync_import(settings, path, capsys)
    assert (code, len(lines)) == (2, 1)
    assert lines[0] == (
        "pcsync: error: payments.csv:1: the header has column 'Amount' twice (columns 3 and 6); "
        "remove or rename one"
    )
    assert unchanged(sessions)


def test_a_field_of_200k_characters_is_one_line(books, tmp_path, capsys) -> None:
    settings, sessions = books
    path = one_row(tmp_path, f"{C1},2026-11-01,12.50,USD,P-1,{'x' * 200_000}")
    code, lines = pcsync_import(settings, path, capsys)
    assert (code, len(lines)) == (2, 1)
    assert lines[0].startswith("pcsync: error: payments.csv:2: a field longer than")
    assert len(lines[0]) < 200
    assert unchanged(sessions)


def test_a_file_that_is_not_utf8_is_one_line(books, tmp_path, capsys) -> None:
    settings, sessions = books
    path = tmp_path / "payments.csv"
    path.write_text(HEADER + f"{C1},2026-11-01,12.50,USD,P-1,\n", encoding="utf-16")
    code, lines = pcsync_import(settings, path, capsys)
    assert (code, len(lines)) == (2, 1)
    assert "not UTF-8 text" in lines[0]
    assert lines[0].startswith("pcsync: error: payments.csv:1:")
    assert unchanged(sessions)


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04 not really a zip", b"\x00" * 1000, b""],
    ids=["truncated-zip", "binary", "empty"],
)
def test_a_corrupt_xlsx_is_one_line_naming_the_file(books, tmp_path, capsys, content) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = books
    path = tmp_path / "payments.xlsx"
    path.write_bytes(content)
    code, lines = pcsync_import(settings, path, capsys)
    assert (code, len(lines)) == (2, 1)
    assert lines[0].startswith("pcsync: error: payments.xlsx: not a readable XLSX workbook")
    assert unchanged(sessions)


def test_an_xlsx_whose_sheet_is_damaged_is_one_line(books, tmp_path, capsys) -> None:
    settings, sessions = books
    good = tmp_path / "good.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["customer", "date", "amount", "currency", "reference"])
    sheet.append([C1, "2026-11-01", Decimal("1.50"), "USD", "P-1"])
    book.save(good)
    broken = tmp_path / "payments.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            target.writestr(item, data)
    code, lines = pcsync_import(settings, broken, capsys)
    assert (code, len(lines)) == (2, 1)
    assert lines[0].startswith("pcsync: error: payments.xlsx")
    assert "not a readable XLSX workbook" in lines[0]
    assert unchanged(sessions)


def test_xlsx_number_cells_are_read_exactly_and_bounded(books, tmp_path, capsys) -> None:
    settings, sessions = books
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["customer", "date", "amount", "currency", "reference"])
    sheet.append([C1, datetime(2026, 11, 5), 0.07, "USD", "X-1"])
    sheet.append([C1, date(2026, 11, 6), 1234567.5, "USD", "X-2"])
    sheet.append([C1, "2026-11-07", 100, "JPY", 7])
    sheet.append([C1, "2026-11-08", 0.1 + 0.2, "USD", "X-3"])  # shown as 0.3
    book.save(tmp_path / "p.xlsx")
    code, _ = pcsync_import(settings, tmp_path / "p.xlsx", capsys)
    assert code == 0
    with sessions() as session:
        stored = session.execute(
            sa.select(Payment.reference, Payment.amount).order_by(Payment.reference)
        ).all()
    assert stored == [
        ("7", Decimal(100)),
        ("X-1", Decimal("0.07")),
        ("X-2", Decimal("1234567.5")),
        ("X-3", Decimal("0.3")),
    ]


def test_an_xlsx_number_cell_with_too_many_decimals_is_refused(books, tmp_path, capsys) -> None:
    settings, sessions = books
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["customer", "date", "amount", "currency", "reference"])
    sheet.append([C1, "2026-11-05", 12.345, "USD", "X-1"])
    book.save(tmp_path / "p.xlsx")
    code, lines = pcsync_import(settings, tmp_path / "p.xlsx", capsys)
    assert (code, len(lines)) == (2, 1)
    assert lines[0].startswith("pcsync: error: p.xlsx:2: amount: 12.345 has 3 decimals; USD has 2")
    assert unchanged(sessions)


def test_a_date_a_year_ahead_is_accepted_and_past_it_refused(books, tmp_path, capsys) -> None:
    settings, _ = books
    ahead = date.today() + timedelta(days=300)
    path = one_row(tmp_path, f"{C1},{ahead},12.50,USD,P-1,")
    assert pcsync_import(settings, path, capsys)[0] == 0
    too_far = date.today() + timedelta(days=400)
    path = one_row(tmp_path, f"{C1},{too_far},12.50,USD,P-2,")
    code, lines = pcsync_import(settings, path, capsys)
    assert (code, len(lines)) == (2, 1)
    assert f"date: {too_far} is out of range" in lines[0]


def test_decimal_comma_files_import_under_a_comma_separator(
    write_config, books, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = books
    config = settings.source.read_text() + '\n[payments]\ndecimal_separator = ","\n'
    settings.source.write_text(config, encoding="utf-8")
    text = "customer;date;amount;currency;reference\n" + f'{C1};2026-11-01;"1.446,24 €";EUR;P-1\n'
    path = tmp_path / "bank.csv"
    path.write_text(text, encoding="utf-8")
    code, _ = pcsync_import(settings, path, capsys)
    assert code == 0
    with sessions() as session:
        assert session.scalar(sa.select(Payment.amount)) == Decimal("1446.24")


def test_skip_bad_rows_in_a_folder_it_cannot_write_is_one_line(books, tmp_path, capsys) -> None:
    settings, sessions = books
    path = one_row(tmp_path, f"{C1},2026-11-01,abc,USD,P-1,")
    # The tests run as root, whom file modes do not stop: a folder in the rejects
    # file's place makes writing it fail the same way a read-only folder does.
    (tmp_path / "payments.rejected.csv.partial").mkdir()
    code, lines = pcsync_import(settings, path, capsys, "--skip-bad-rows")
    assert (code, len(lines)) == (2, 1)
    assert lines[0].startswith(
        f"pcsync: error: {tmp_path / 'payments.rejected.csv'}: cannot write the rejects file"
    )
    assert unchanged(sessions)


def test_dry_run_stores_nothing_at_all(books, tmp_path, capsys) -> None:
    settings, sessions = books
    path = one_row(tmp_path, f"{C1},2026-11-01,12.50,USD,P-1,")
    code, _ = pcsync_import(settings, path, capsys, "--dry-run")
    assert code == 0
    assert unchanged(sessions)
