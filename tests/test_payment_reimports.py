"""The same payment imported again from another export: the same amount, however it is written.

A bank's XLSX export writes 1234.5 as a number; its CSV export, or the finance
system's, writes "1234.50" or "1,234.50". A reference already stored is the same
payment when its customer, date, currency, invoice and amount's value agree,
whatever the text of the amount; a real change is still a conflict.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from reconciliation.errors import InputError
from sync.payments import count_payments, import_payments
from tests.books import C1, TWO_CUSTOMERS, open_books

HEADER = "customer,date,amount,currency,reference,invoice\n"


@pytest.fixture
def books(write_config, migrated):  # type: ignore[no-untyped-def]
    return open_books(write_config, migrated, TWO_CUSTOMERS)


def _csv(path: Path, amount: str) -> Path:
    path.write_text(HEADER + f'{C1},2026-11-01,"{amount}",USD,PAY-1,G000000001\n', encoding="utf-8")
    return path


def _xlsx(path: Path, amount: float) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["customer", "date", "amount", "currency", "reference", "invoice"])
    sheet.append([C1, datetime(2026, 11, 1), amount, "USD", "PAY-1", "G000000001"])
    book.save(path)
    return path


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("1234.50", "1234.5"),
        ("1234.5", "1234.50"),
        ("1234.50", "1,234.50"),
        ("100", "100.00"),
        ("100.00", "USD 100"),
    ],
)
def test_the_same_payment_written_another_way_is_unchanged_not_a_conflict(
    books, tmp_path, first: str, again: str, dry_run: bool
) -> None:
    settings, sessions = books
    assert import_payments(settings, sessions, _csv(tmp_path / "a.csv", first)).imported == 1
    result = import_payments(settings, sessions, _csv(tmp_path / "b.csv", again), dry_run=dry_run)
    assert (result.imported, result.unchanged, result.rejected) == (0, 1, 0)
    assert count_payments(sessions) == 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_csv_payment_exported_again_as_xlsx_is_unchanged(books, tmp_path, dry_run: bool) -> None:
    settings, sessions = books
    import_payments(settings, sessions, _csv(tmp_path / "a.csv", "1234.50"))
    result = import_payments(
        settings, sessions, _xlsx(tmp_path / "b.xlsx", 1234.5), dry_run=dry_run
    )
    assert (result.imported, result.unchanged, result.rejected) == (0, 1, 0)


@pytest.mark.parametrize("dry_run", [False, True])
def test_another_amount_under_a_stored_reference_is_still_a_conflict(
    books, tmp_path, dry_run: bool
) -> None:
    settings, sessions = books
    import_payments(settings, sessions, _xlsx(tmp_path / "a.xlsx", 1234.5))
    with pytest.raises(InputError) as info:
        import_payments(settings, sessions, _csv(tmp_path / "b.csv", "1234.05"), dry_run=dry_run)
    assert "b.csv:2: reference: 'PAY-1' was imported before with different content" in str(
        info.value.problems[0]
    )
    assert count_payments(sessions) == 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_under_a_decimal_comma_the_same_payment_is_unchanged(
    write_config, migrated, tmp_path, dry_run: bool
) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = open_books(
        lambda **kw: write_config('\n[payments]\ndecimal_separator = ","\n', **kw),
        migrated,
        TWO_CUSTOMERS,
    )
    import_payments(settings, sessions, _csv(tmp_path / "a.csv", "1234,5"))
    for again in ("1234,50", "1.234,50"):
        path = _csv(tmp_path / "b.csv", again)
        result = import_payments(settings, sessions, path, dry_run=dry_run)
        assert (result.imported, result.unchanged, result.rejected) == (0, 1, 0)
    changed = _csv(tmp_path / "c.csv", "1234,51")
    with pytest.raises(InputError):
        import_payments(settings, sessions, changed, dry_run=dry_run)
