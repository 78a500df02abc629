"""``payments import --dry-run`` reports exactly what the import does, and changes nothing.

The dry run finds repeats and conflicts in memory (``sync.payments.dryrun``),
the import in its staging table. On SQLite and PostgreSQL, for a file mixing
good rows, bad ones, references repeated in the file (after a good row and
after a rejected one), a changed payment, an unchanged one and a voided one,
both give the same counts, the same problems (``file:row: field: reason``,
in the same order) and the same credit preview; the dry run leaves every
table as it was. Hash collisions cost time, not answers: with every
reference hashed alike the dry run still says the same.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import sync.payments.dryrun
import sync.payments.references
import sync.payments.scan
from reconciliation.errors import InputError
from sync.db.models import Base
from sync.payments import import_payments, void_payments
from sync.payments.importing import ImportResult
from tests.books import C1, C2, TWO_CUSTOMERS, open_books

HEADER = ("customer", "date", "amount", "currency", "reference", "invoice")


@pytest.fixture
def books(write_config, migrated):  # type: ignore[no-untyped-def]
    return open_books(write_config, migrated, TWO_CUSTOMERS)


def write(path: Path, rows: list[tuple[str, ...]], *, quoted: bool = False) -> Path:
    """A plain CSV (read by column), or every cell quoted (read record by record)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        if quoted:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerows([HEADER, *rows])
        else:
            handle.writelines(",".join(row) + "\n" for row in [HEADER, *rows])
    return path


STORED = [
    (C1, "2026-11-01", "10.00", "USD", "PAY-1", ""),
    (C1, "2026-11-01", "20.00", "USD", "PAY-2", ""),
    (C2, "2026-11-01", "1000", "JPY", "PAY-3", ""),
    (C2, "2026-11-01", "5.00", "EUR", "PAY-V", "G000000001"),
]
# References whose order by code point differs from a linguistic collation's.
SAME_DAY = ["pay-a", "PAY-B", "Pay-c", "_x", "a-1", "A_2", "b", "Ä1"]
MIXED = [
    (C1, "2026-11-01", "10.00", "USD", "PAY-1", ""),  # 2: unchanged
    (C1, "2026-11-01", "25.00", "USD", "PAY-2", ""),  # 3: imported before, other content
    (C2, "2026-11-01", "5.00", "EUR", "PAY-V", "G000000001"),  # 4: voided, stays voided
    ("contoso.onmicrosoft.com", "2026-11-02", "12.50", "usd", "PAY-10", ""),  # 5: new
    (C1, "2026-11-03", "12.50", "USD", "PAY-10", ""),  # 6: repeats row 5
    (C1, "2026-11-03", "abc", "USD", "PAY-11", ""),  # 7: bad amount
    (C1, "2026-11-03", "7.00", "USD", "PAY-11", ""),  # 8: repeats rejected row 7
    ("nobody.example", "2026-11-03", "7", "US", "", ""),  # 9: three problems
    ("", "", "", "", "", ""),  # 10: blank, not a row
    (C2, "2026-11-04", "500", "JPY", "PAY-12", ""),  # 11: new
    (C2, "2026-11-04", " 600 ", "JPY", "  PAY-13 ", ""),  # 12: new, spaces around
    (C1, "2026-11-05", "1 234.50", "USD", "PAY-14", "G1"),  # 13: new, grouped digits
    *[(C1, "2026-11-06", f"1.{n:02d}", "USD", ref, "") for n, ref in enumerate(SAME_DAY)],
    (C1, "2026-11-06", "3.00", "USD", "pay-a", ""),  # 22: repeats row 14
]


def tables(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, to show that nothing changed."""
    with engine.connect() as connection:
        return {
            table.name: sorted(map(tuple, connection.execute(sa.select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def outcome(run: Callable[[], ImportResult]) -> Any:
    try:
        result = run()
    except InputError as exc:
        return ("refused", str(exc), exc.problems)
    return (
        result.rows_read,
        result.imported,
        result.unchanged,
        result.rejected,
        result.voided,
        result.in_credit,
    )


@pytest.mark.parametrize("quoted", [False, True], ids=["by-column", "by-record"])
def test_the_dry_run_says_what_the_import_does_and_changes_nothing(
    books, migrated, tmp_path: Path, quoted: bool
) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = books
    import_payments(settings, sessions, write(tmp_path / "stored.csv", STORED))
    void_payments(sessions, references=["PAY-V"], reason="test", by="tester")
    path = write(tmp_path / "mixed.csv", MIXED, quoted=quoted)
    before = tables(migrated)

    def run(dry_run: bool, skip: bool) -> Any:
        return outcome(
            lambda: import_payments(settings, sessions, path, dry_run=dry_run, skip_bad_rows=skip)
        )

    dry_refused, dry_skipping = run(True, False), run(True, True)
    assert tables(migrated) == before
    refused = run(False, False)
    assert tables(migrated) == before  # refused: nothing imported
    skipping = run(False, True)
    assert dry_refused == refused
    assert refused[0] == "refused"
    assert refused[2] == (
        "mixed.csv:3: reference: 'PAY-2' was imported before with different content "
        "(a corrected payment needs a reference of its own)",
        "mixed.csv:6: reference: duplicate of row 5",
        "mixed.csv:7: amount: 'abc': not an amount: expected digits, '.' before the decimals "
        "and ',' or a space between groups of three (like 1,234.50)",
        "mixed.csv:8: reference: duplicate of row 7",
        "mixed.csv:9: currency: 'US' is not an ISO 4217 currency code (like USD, EUR)",
        "mixed.csv:9: customer: unknown customer 'nobody.example' (use the tenant id or "
        "primary domain; run `pcsync sync` if it is new)",
        "mixed.csv:9: reference: missing",
        "mixed.csv:22: reference: duplicate of row 14",
    )
    assert dry_skipping[:5] == skipping[:5] == (20, 12, 1, 6, 1)
    assert dry_skipping[5] == skipping[5]
    credit = {(c.customer_id, c.currency): c for c in skipping[5]}
    usd = credit[(C1, "USD")]
    assert [p.reference for p in usd.payments] == ["PAY-10", "PAY-14", "A_2", "PAY-B", "Pay-c"]
    assert usd.more == 5


def test_a_clean_file_previews_as_it_imports(books, migrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = books
    rows = [
        (C1 if n % 2 else "fabrikam.onmicrosoft.com", f"2026-11-{1 + n % 28:02d}", f"{n + 1}.50",
         ("USD", "EUR", "JPY")[n % 3] if n % 3 != 2 else "JPY", f"R{n}", "")
        for n in range(300)
    ]  # fmt: skip
    rows = [
        (c, d, a if cur != "JPY" else a.split(".")[0], cur, r, i) for c, d, a, cur, r, i in rows
    ]
    path = write(tmp_path / "clean.csv", rows)
    before = tables(migrated)
    dry = outcome(lambda: import_payments(settings, sessions, path, dry_run=True))
    assert tables(migrated) == before
    done = outcome(lambda: import_payments(settings, sessions, path))
    assert dry == done
    assert dry[:5] == (300, 300, 0, 0, 0)
    again = outcome(lambda: import_payments(settings, sessions, path, dry_run=True))
    assert again[:5] == (300, 0, 300, 0, 0)


def test_colliding_hashes_change_no_answer(
    books, migrated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Every reference hashed alike (and the stored ones read one at a time): the rows are
    compared as text, and the answers hold."""
    settings, sessions = books
    import_payments(settings, sessions, write(tmp_path / "stored.csv", STORED))
    void_payments(sessions, references=["PAY-V"], reason="test", by="tester")
    path = write(tmp_path / "mixed.csv", MIXED)
    honest = [
        outcome(lambda s=skip: import_payments(settings, sessions, path, dry_run=True,
                                               skip_bad_rows=s))
        for skip in (False, True)
    ]  # fmt: skip

    def alike(array: Any) -> np.ndarray[Any, Any]:
        return np.zeros(len(array), np.uint64)

    for module in (sync.payments.references, sync.payments.scan, sync.payments.dryrun):
        monkeypatch.setattr(module, "text_hashes", alike)
    monkeypatch.setattr(sync.payments.dryrun, "_STORED_BATCH", 1)  # stored payments one by one
    colliding = [
        outcome(lambda s=skip: import_payments(settings, sessions, path, dry_run=True,
                                               skip_bad_rows=s))
        for skip in (False, True)
    ]  # fmt: skip
    assert colliding == honest


def test_past_the_listed_problems_the_dry_run_counts_as_the_import_does(
    books, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """More problems than are listed: the same first ones, the same count."""
    settings, sessions = books
    rows: list[tuple[str, ...]] = []
    for n in range(150):
        if n % 3 == 0:
            rows.append((C1, "2026-11-01", "1.00", "USD", f"R{n // 2}", ""))  # repeats R(n//2)
        elif n % 3 == 1:
            rows.append(("nobody", "2026-11-01", "x", "USD", f"R{n}", ""))  # two problems
        else:
            rows.append((C1, "2026-11-01", "2.00", "USD", f"R{n}", ""))
    path = write(tmp_path / "many.csv", rows)
    dry = outcome(lambda: import_payments(settings, sessions, path, dry_run=True))
    done = outcome(lambda: import_payments(settings, sessions, path))
    assert dry == done
    assert dry[0] == "refused"
    assert len(dry[2]) == 100
    assert "the first 100 are listed" in dry[1]


def test_a_workbook_previews_as_it_imports(books, migrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Number and date cells, read record by record: the same counts and credit preview."""
    from openpyxl import Workbook

    settings, sessions = books
    import_payments(settings, sessions, write(tmp_path / "stored.csv", STORED))
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    sheet.append([C1, datetime(2026, 11, 5), 1000, "USD", "X-1", "G000000001"])
    # the number 10 is the amount "10.00" that PAY-1 was imported with: the same payment
    sheet.append([C1, datetime(2026, 11, 1), 10, "USD", "PAY-1", None])
    sheet.append([C1, "2026-11-06", "0.07", "USD", "X-2", None])
    sheet.append([C2, "2026-11-06", 1234.5, "EUR", "X-3", None])
    sheet.append([C2, "2026-11-06", 12.345, "EUR", "X-4", None])  # too many decimals
    book.save(tmp_path / "p.xlsx")
    path = tmp_path / "p.xlsx"
    before = tables(migrated)
    dry = [
        outcome(lambda s=skip: import_payments(settings, sessions, path, dry_run=True,
                                               skip_bad_rows=s))
        for skip in (False, True)
    ]  # fmt: skip
    assert tables(migrated) == before
    done = [
        outcome(lambda s=skip: import_payments(settings, sessions, path, skip_bad_rows=s))
        for skip in (False, True)
    ]
    assert dry == done
    assert done[1][:5] == (5, 3, 1, 1, 0)


@pytest.mark.parametrize(
    "rows",
    [
        [],  # the header alone
        [("", "", "", "", "", "")],  # a blank row
        [("nobody", "2026-11-01", "x", "USD", "R1", "")],  # nothing good
        [("nobody", "2026-11-01", "x", "USD", "R1", ""), (C1, "2026-11-01", "1", "USD", "R1", "")],
    ],
)
def test_files_with_nothing_to_import_preview_as_they_import(
    books, tmp_path: Path, rows: list[tuple[str, ...]]
) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = books
    path = write(tmp_path / "few.csv", rows)
    for skip in (False, True):
        dry = outcome(lambda s=skip: import_payments(settings, sessions, path, dry_run=True,
                                                     skip_bad_rows=s))  # fmt: skip
        path.with_name("few.rejected.csv").unlink(missing_ok=True)
        done = outcome(lambda s=skip: import_payments(settings, sessions, path, skip_bad_rows=s))
        assert dry == done


# Longer than any other reference: every other one has padding beside it in an array.
LONG = "REF-" + "9" * 36


def test_a_reference_hashes_alike_whatever_is_beside_it() -> None:
    import pyarrow as pa

    from sync.payments.references import text_hashes

    alone = text_hashes(pa.array(["PAY-1", "Ä1", "12345678"]))
    beside = text_hashes(pa.array(["PAY-1", "Ä1", "12345678", LONG, "x" * 17]))
    assert list(alone) == list(beside[:3])


def test_references_of_every_length_preview_as_they_import(books, migrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Stored references are read in chunks and the file's in batches, each hashed as one
    array: a long reference in one must not change how the short ones hash."""
    settings, sessions = books
    stored = write(tmp_path / "stored.csv", [*STORED, (C1, "2026-11-01", "1.00", "USD", LONG, "")])
    import_payments(settings, sessions, stored)
    void_payments(sessions, references=["PAY-V"], reason="test", by="tester")
    again = outcome(lambda: import_payments(settings, sessions, stored, dry_run=True))
    assert again == outcome(lambda: import_payments(settings, sessions, stored))
    assert again[:5] == (5, 0, 4, 0, 1)
    path = write(
        tmp_path / "mixed.csv", [*MIXED, (C1, "2026-11-07", "2.00", "USD", LONG + "-2", "")]
    )
    for skip in (False, True):
        dry = outcome(
            lambda s=skip: import_payments(settings, sessions, path, dry_run=True, skip_bad_rows=s)
        )
        done = outcome(lambda s=skip: import_payments(settings, sessions, path, skip_bad_rows=s))
        assert dry == done, skip


def test_an_amount_past_64_bits_of_minor_units_previews_as_it_imports(
    books, migrated, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """15 digits of CLF (4 decimals) are 10**19 minor units: past an int64."""
    settings, sessions = books
    rows = [
        (C1, "2026-11-01", "999999999999999", "CLF", "BIG-1", ""),
        (C1, "2026-11-02", "1.5", "CLF", "SMALL-1", ""),
        (C2, "2026-11-02", "10.00", "USD", "USD-1", ""),
    ]
    for quoted in (False, True):
        path = write(tmp_path / f"big{quoted}.csv", rows, quoted=quoted)
        dry = outcome(lambda p=path: import_payments(settings, sessions, p, dry_run=True))
        assert dry[:5] == (3, 3, 0, 0, 0)
        credit = {(c.customer_id, c.currency): c for c in dry[5]}
        assert credit[(C1, "CLF")].imported == Decimal("1000000000000000.5")
    assert dry == outcome(lambda: import_payments(settings, sessions, path))


def test_a_byte_order_mark_starting_a_row_previews_as_it_imports(
    books, migrated, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings, sessions = books
    path = write(tmp_path / "bom.csv", [("\ufeff" + C1, "2026-11-01", "3.00", "USD", "B1", "")])
    dry = outcome(lambda: import_payments(settings, sessions, path, dry_run=True))
    assert dry[0] == "refused"
    assert "control character U+FEFF" in dry[2][0]
    assert dry == outcome(lambda: import_payments(settings, sessions, path))
