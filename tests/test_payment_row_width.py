"""A CSV row with more fields than its header: a value split by an unquoted separator.

``1,234.50`` written without quotes in a comma-separated file is two fields,
``1`` and ``234.50``; with the amount the header's last column, the row would be
read as a payment of 1. Such a row is refused, named, and nothing is imported
(dry run alike); cells past the header that are empty are only padding.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciliation.errors import InputError
from sync.db.models import Payment
from sync.payments import count_payments, import_payments
from tests.books import C1, TWO_CUSTOMERS, open_books


@pytest.fixture
def books(write_config, migrated):  # type: ignore[no-untyped-def]
    return open_books(write_config, migrated, TWO_CUSTOMERS)


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize(
    "row",
    [
        f"{C1},2026-11-01,USD,PAY-2,1,234.50",  # a thousands separator, unquoted
        f"{C1},2026-11-01,EUR,PAY-2,1234,56",  # a decimal comma, unquoted
    ],
)
def test_a_row_with_more_fields_than_the_header_is_refused(
    books, tmp_path: Path, row: str, dry_run: bool
) -> None:
    settings, sessions = books
    path = tmp_path / "p.csv"
    path.write_text(
        f"customer,date,currency,reference,amount\n{C1},2026-11-01,USD,PAY-1,10.00\n{row}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        import_payments(settings, sessions, path, dry_run=dry_run)
    assert info.value.problems[0].startswith("p.csv:3: ")
    assert "more fields than the header" in info.value.problems[0]
    assert count_payments(sessions) == 0


@pytest.mark.parametrize("dry_run", [False, True])
def test_empty_cells_past_the_header_are_padding(books, tmp_path: Path, dry_run: bool) -> None:
    settings, sessions = books
    path = tmp_path / "p.csv"
    path.write_text(
        f"customer,date,currency,reference,amount\n{C1},2026-11-01,USD,PAY-1,10.00,,\n",
        encoding="utf-8",
    )
    result = import_payments(settings, sessions, path, dry_run=dry_run)
    assert (result.imported, result.rejected) == (1, 0)
    if not dry_run:
        with sessions() as session:
            assert session.scalar(sa.select(Payment.amount)) == Decimal("10.00")
