"""Payment imports on SQLite and PostgreSQL: all or nothing, idempotent, exact amounts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from reconciliation.errors import InputError
from sync.cli import main
from sync.config import load_settings
from sync.db.models import Payment
from sync.payments import count_payments, import_payments, payment_digest
from sync.store import content_hash
from tests.books import C1, C2, TWO_CUSTOMERS, open_books


@pytest.fixture
def books(write_config, migrated):  # type: ignore[no-untyped-def]
    """Settings and sessions on a database that knows two customers."""
    return open_books(write_config, migrated, TWO_CUSTOMERS)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


GOOD = (
    "customer,date,amount,currency,reference,invoice\n"
    f"{C1},2026-11-01,1234.50,USD,PAY-1,G000000001\n"
    "CONTOSO.onmicrosoft.com,2026-11-02,0.10,usd,PAY-2,\n"
    f"{C2},2026-11-03,1000,JPY,PAY-3,\n"
)


def stored(sessions) -> list[tuple[str, str, Decimal, str, str | None]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        rows = session.scalars(sa.select(Payment).order_by(Payment.reference)).all()
        return [(p.reference, p.customer_id, p.amount, p.currency, p.invoice_id) for p in rows]


def test_import_matches_customers_by_id_or_domain_and_keeps_amounts_exact(books, tmp_path) -> None:
    settings, sessions = books
    result = import_payments(settings, sessions, write(tmp_path / "p.csv", GOOD))
    assert (result.imported, result.unchanged, result.rejected) == (3, 0, 0)
    assert stored(sessions) == [
        ("PAY-1", C1, Decimal("1234.50"), "USD", "G000000001"),
        ("PAY-2", C1, Decimal("0.10"), "USD", None),
        ("PAY-3", C2, Decimal("1000"), "JPY", None),
    ]


def test_importing_twice_adds_nothing(books, tmp_path) -> None:
    settings, sessions = books
    path = write(tmp_path / "p.csv", GOOD)
    import_payments(settings, sessions, path)
    again = import_payments(settings, sessions, path)
    assert (again.imported, again.unchanged) == (0, 3)
    assert count_payments(sessions) == 3


BAD = (
    "customer,date,amount,currency,reference,invoice\n"
    f"{C1},2026-11-01,12.50,USD,PAY-1,\n"
    f"{C1},01/11/2026,abc,USD,PAY-2,\n"
    "nobody.example,2026-11-01,5,US,PAY-3,\n"
    f"{C1},2026-11-01,5.001,USD,PAY-1,\n"
    f"{C2},2026-11-04,7,EUR,,\n"
)


def test_a_file_with_bad_rows_imports_nothing_and_lists_every_problem(books, tmp_path) -> None:
    settings, sessions = books
    with pytest.raises(InputError) as info:
        import_payments(settings, sessions, write(tmp_path / "payments.csv", BAD))
    assert info.value.problems == (
        "payments.csv:3: amount: 'abc': not an amount: expected digits, '.' before the "
        "decimals and ',' or a space between groups of three (like 1,234.50)",
        "payments.csv:3: date: not a date: '01/11/2026' (expected YYYY-MM-DD, like 2026-11-01)",
        "payments.csv:4: currency: 'US' is not an ISO 4217 currency code (like USD, EUR)",
        "payments.csv:4: customer: unknown customer 'nobody.example' (use the tenant id or "
        "primary domain; run `pcsync sync` if it is new)",
        "payments.csv:5: amount: 5.001 has 3 decimals; USD has 2",
        "payments.csv:5: reference: duplicate of row 2",
        "payments.csv:6: reference: missing",
    )
    assert count_payments(sessions) == 0


def test_skip_bad_rows_imports_the_good_ones_and_writes_the_rejects(books, tmp_path) -> None:
    settings, sessions = books
    result = import_payments(
        settings, sessions, write(tmp_path / "payments.csv", BAD), skip_bad_rows=True
    )
    assert (result.imported, result.rejected) == (1, 4)
    assert [row[0] for row in stored(sessions)] == ["PAY-1"]
    rejects = (tmp_path / "payments.rejected.csv").read_text().splitlines()
    assert rejects[0] == "row,customer,date,amount,currency,reference,invoice,problem"
    assert rejects[1].startswith("3,")
    assert "amount: 'abc': not an amount" in rejects[1]
    assert len(rejects) == 5


def test_dry_run_stores_nothing(books, tmp_path) -> None:
    settings, sessions = books
    result = import_payments(settings, sessions, write(tmp_path / "p.csv", GOOD), dry_run=True)
    assert result.imported == 3
    assert count_payments(sessions) == 0


def test_dry_run_with_nothing_stored_still_finds_a_repeated_reference(books, tmp_path) -> None:
    settings, sessions = books
    repeated = GOOD + f"{C2},2026-11-04,5,JPY,PAY-3,\n"
    with pytest.raises(InputError, match=r"p\.csv:5: reference: duplicate of row 4"):
        import_payments(settings, sessions, write(tmp_path / "p.csv", repeated), dry_run=True)
    again = import_payments(settings, sessions, write(tmp_path / "q.csv", GOOD), dry_run=True)
    assert (again.imported, again.unchanged) == (3, 0)
    import_payments(settings, sessions, write(tmp_path / "q.csv", GOOD))
    again = import_payments(settings, sessions, write(tmp_path / "q.csv", GOOD), dry_run=True)
    assert (again.imported, again.unchanged) == (0, 3)


def test_bom_and_semicolons_and_mapped_headers(write_config, migrated, books, tmp_path) -> None:
    _, sessions = books
    settings = load_settings(
        write_config(
            '[payments.columns]\ncustomer = "Kunde"\ndate = "Datum"\namount = "Betrag"\n'
            'currency = "Währung"\nreference = "Beleg"\ninvoice = "Rechnung"\n'
            '[payments]\ndate_format = "%d.%m.%Y"\n',
            db_url=migrated.url.render_as_string(False),
        ),
        {},
    )
    text = f"KUNDE;Datum;Betrag;Währung;Beleg;Rechnung\n{C1};03.11.2026;99.95;EUR;B-7;\n"
    result = import_payments(settings, sessions, write(tmp_path / "p.csv", text, "utf-8-sig"))
    assert result.imported == 1
    assert stored(sessions) == [("B-7", C1, Decimal("99.95"), "EUR", None)]
    with sessions() as session:
        assert session.scalar(sa.select(Payment.payment_date)) == date(2026, 11, 3)


def test_xlsx_with_dates_and_numbers(books, tmp_path) -> None:
    settings, sessions = books
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Customer", "Date", "Amount", "Currency", "Reference", "Invoice"])
    sheet.append([C1, datetime(2026, 11, 5), 1234.5, "USD", "X-1", "G000000001"])
    sheet.append(["fabrikam.onmicrosoft.com", "2026-11-06", "0.07", "USD", "X-2", None])
    book.save(tmp_path / "p.xlsx")
    result = import_payments(settings, sessions, tmp_path / "p.xlsx")
    assert result.imported == 2
    assert stored(sessions) == [
        ("X-1", C1, Decimal("1234.5"), "USD", "G000000001"),
        ("X-2", C2, Decimal("0.07"), "USD", None),
    ]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_reference_reused_with_different_content_is_an_error(
    books, tmp_path, dry_run: bool
) -> None:
    settings, sessions = books
    import_payments(settings, sessions, write(tmp_path / "p.csv", GOOD))
    changed = GOOD.replace("1234.50", "1234.51")
    with pytest.raises(InputError) as info:
        import_payments(settings, sessions, write(tmp_path / "p2.csv", changed), dry_run=dry_run)
    assert info.value.problems == (
        "p2.csv:2: reference: 'PAY-1' was imported before with different content (a corrected "
        "payment needs a reference of its own) (nothing imported; fix it, or use --skip-bad-rows)",
    )


def test_cli_lists_each_bad_row_and_exits_non_zero(books, tmp_path, capsys) -> None:
    settings, sessions = books
    code = main(
        [
            "--config",
            str(settings.source),
            "payments",
            "import",
            str(write(tmp_path / "payments.csv", BAD)),
        ]
    )
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2
    assert lines[0].startswith("pcsync: error: payments.csv:3: amount: 'abc': not an amount")
    assert lines[-1].startswith(
        "pcsync: error: payments.csv: 7 problem(s) in 4 row(s), nothing imported"
    )
    assert count_payments(sessions) == 0


def test_missing_required_column_names_the_header(books, tmp_path) -> None:
    settings, sessions = books
    with pytest.raises(InputError, match=r"p\.csv:1: no column 'reference' for reference"):
        import_payments(
            settings, sessions, write(tmp_path / "p.csv", "customer,date,amount,currency\n")
        )


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([C1, C2, "contoso.onmicrosoft.com"]),
        st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2),
        st.sampled_from(["USD", "EUR"]),
    ),
    max_size=15,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy)
def test_import_twice_equals_import_once(books, tmp_path, rows) -> None:  # type: ignore[no-untyped-def]
    settings_, sessions = books
    with sessions.begin() as session:
        session.execute(sa.delete(Payment))
    lines = ["customer,date,amount,currency,reference"]
    lines += [f"{c},{d},{a},{cur},R{n}" for n, (c, d, a, cur) in enumerate(rows)]
    path = write(tmp_path / "prop.csv", "\n".join(lines) + "\n")
    import_payments(settings_, sessions, path)
    once = stored(sessions)
    second = import_payments(settings_, sessions, path)
    assert second.imported == 0
    assert second.unchanged == len(rows)
    assert stored(sessions) == once
    assert len(once) == len(rows)


@settings(max_examples=200, deadline=None)
@given(
    customer=st.text(min_size=1, max_size=40),
    invoice=st.one_of(st.none(), st.text(max_size=20)),
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e12"), places=2),
    day=st.dates(),
)
def test_the_payment_digest_is_the_content_hash_of_the_payment(
    customer: str, invoice: str | None, amount: Decimal, day: date
) -> None:
    expected = content_hash(
        {
            "customer": customer,
            "date": day.isoformat(),
            "amount": str(amount),
            "currency": "EUR",
            "invoice": invoice or "",
        }
    )
    assert payment_digest(customer, day, amount, "EUR", invoice) == expected


def test_a_large_import_rebuilds_the_index_unseen_by_a_reader(books, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The import that fills ``payments`` without its customer index (SQLite) stores the
    same payments, leaves the index as it was, and a reader in the middle sees the table
    as before the import, index included, until it reads again."""
    import sync.payments.storing as storing

    settings, sessions = books
    import_payments(settings, sessions, write(tmp_path / "first.csv", GOOD))
    monkeypatch.setattr(storing, "REBUILD_ROWS", 1)
    more = "".join(f"{C1},2026-11-04,{n}.25,USD,NEXT-{n},\n" for n in range(1, 7))
    engine = sessions.kw["bind"]
    by_customer = sa.select(sa.func.count()).select_from(Payment).where(Payment.customer_id == C1)
    with engine.connect() as reader:
        # a snapshot from the first read on: what a report or a finance tool reading holds
        if engine.dialect.name == "sqlite":
            reader.exec_driver_sql("BEGIN")
        else:
            reader.execution_options(isolation_level="REPEATABLE READ")
        reader.execute(by_customer).scalar_one()
        result = import_payments(
            settings, sessions, write(tmp_path / "more.csv", GOOD.splitlines()[0] + "\n" + more)
        )
        assert result.imported == 6
        assert reader.execute(by_customer).scalar_one() == 2
        reader.rollback()
        assert reader.execute(by_customer).scalar_one() == 8
    names = {index["name"] for index in sa.inspect(engine).get_indexes("payments")}
    assert "ix_payments_customer_id" in names
    assert [row[:3] for row in stored(sessions)][:6] == [
        (f"NEXT-{n}", C1, Decimal(f"{n}.25")) for n in range(1, 7)
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # only SQLite drops the index
def test_a_large_import_failing_midway_leaves_the_table_and_its_index_as_they_were(  # type: ignore[no-untyped-def]
    books, tmp_path, monkeypatch
) -> None:
    """An import that fails after the customer index was dropped (SQLite) stores nothing
    and leaves the index in place: the drop is part of the import's transaction."""
    import sync.payments.storing as storing

    settings, sessions = books
    assert sessions.kw["bind"].dialect.name == "sqlite"
    import_payments(settings, sessions, write(tmp_path / "first.csv", GOOD))
    before = stored(sessions)
    monkeypatch.setattr(storing, "REBUILD_ROWS", 1)

    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(sa.Index, "create", fail)
    more = "".join(f"{C1},2026-11-04,{n}.25,USD,NEXT-{n},\n" for n in range(1, 7))
    with pytest.raises(RuntimeError, match="disk is full"):
        import_payments(
            settings, sessions, write(tmp_path / "more.csv", GOOD.splitlines()[0] + "\n" + more)
        )
    monkeypatch.undo()
    engine = sessions.kw["bind"]
    names = {index["name"] for index in sa.inspect(engine).get_indexes("payments")}
    assert "ix_payments_customer_id" in names
    assert stored(sessions) == before
    result = import_payments(
        settings, sessions, write(tmp_path / "again.csv", GOOD.splitlines()[0] + "\n" + more)
    )
    assert result.imported == 6
