"""Customer statements: the ledger's figures, no Microsoft invoice ids unless asked, bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import delete

from tests.world import AS_OF, World


def _reconcile_customers(world: World, capsys: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    capsys.readouterr()
    assert world.cli("reconcile", "--as-of", AS_OF, "--json") == 0
    return json.loads(capsys.readouterr().out)["customers"]  # type: ignore[no-any-return]


def test_every_statement_equals_the_reconciliation(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = _reconcile_customers(world, capsys)
    owing = [c for c in customers if Decimal(c["balance"]) != 0]
    assert owing, "the simulator's data should leave someone with a balance"
    out = tmp_path / "statements"
    assert (
        world.cli("statement", "--all", "--as-of", AS_OF, "--format", "json,csv", "--out", str(out))
        == 0
    )
    for row in owing:
        stem = f"statement-{row['customer_id']}-{row['currency']}-{AS_OF}"
        document = json.loads((out / f"{stem}.json").read_text())
        for key in ("balance", "overdue_amount", "days_overdue", "aging", "charged", "paid"):
            assert document[key] == row[key], (row["customer_id"], key)
        assert document["credit"] == row["unapplied_credit"]
        assert document["charged_net"] == row["charged_net"]
        gross = sum(Decimal(c["gross"]) for c in document["charges"])
        assert str(gross) == document["charged"] or gross == Decimal(document["charged"])
        totals = {
            r["detail"]: r["amount"]
            for r in csv.DictReader(io.StringIO((out / f"{stem}.csv").read_text()))
            if r["section"] == "total"
        }
        assert totals["balance"] == row["balance"]
        assert totals["overdue_amount"] == row["overdue_amount"]
        assert {b: totals[f"aging_{b}"] for b in row["aging"]} == row["aging"]
    written = {p.stem for p in out.glob("*.json")}
    assert len(written) == len(owing)


def test_statement_by_domain_names_products_and_payments(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customer = world.sim.data.customers[4]
    domain = customer.get("domain") or customer["id"]
    assert (
        world.cli(
            "statement", domain, "--as-of", AS_OF, "--format", "json", "--out", str(tmp_path / "s")
        )
        == 0
    )
    documents = [json.loads(path.read_text()) for path in (tmp_path / "s").glob("*.json")]
    assert documents
    assert all(d["customer_id"] == customer["id"] for d in documents)
    charges = [charge for d in documents for charge in d["charges"]]
    assert charges, "a customer who never pays has charges"
    for charge in charges:
        assert charge["products"], charge["charge"]
        assert "microsoft_invoice" not in charge
        products = sum(Decimal(p["amount"]) for p in charge["products"])
        # Product amounts are rounded one by one; their sum is the net within a cent a line.
        assert abs(products - Decimal(charge["net"])) <= Decimal("0.01") * len(charge["products"])


def _invoice_ids(world: World) -> list[str]:
    with world.engine.connect() as connection:
        return [row[0] for row in connection.exec_driver_sql("SELECT id FROM invoices")]


def _payment_references(world: World) -> list[str]:
    with world.engine.connect() as connection:
        return [r[0] for r in connection.exec_driver_sql("SELECT reference FROM payments")]


def test_html_names_no_microsoft_invoice_unless_configured(world: World, tmp_path: Path) -> None:
    ids = _invoice_ids(world)
    references = _payment_references(world)
    # The simulator's sample payments quote the invoice they pay (PAY-G000055437-003).
    quoting = [r for r in references if any(i in r for i in ids)]
    assert quoting
    hidden, shown = tmp_path / "hidden", tmp_path / "shown"
    assert (
        world.cli(
            "statement",
            "--all",
            "--as-of",
            AS_OF,
            "--format",
            "html,csv,json",
            "--out",
            str(hidden),
        )
        == 0
    )
    pages = list(hidden.glob("*"))
    assert pages
    for page in pages:
        text = page.read_text()
        assert not [i for i in ids if i in text], page.name
    # A quoted invoice is named by its charge's billing period instead.
    json_text = "".join(p.read_text() for p in hidden.glob("*.json"))
    assert re.search(r'"reference": "PAY-[A-Z][a-z]+ \d{4}', json_text)
    world.configure(
        '[statements]\npartner_name = "Contoso <Billing> & Co"\nshow_microsoft_invoice = true'
    )
    assert (
        world.cli("statement", "--all", "--as-of", AS_OF, "--format", "html", "--out", str(shown))
        == 0
    )
    html = "".join(p.read_text() for p in shown.glob("*.html"))
    assert any(i in html for i in ids)
    assert any(r in html for r in quoting)  # references as the payer gave them
    assert "Contoso &lt;Billing&gt; &amp; Co" in html
    assert "<Billing>" not in html
    assert "@media print" in html
    assert "break-before: page" in html


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["no-such-customer.example"], "unknown customer"),
        (["--as-of", "2001-01-01", "--all"], "before the first Microsoft invoice"),
        (["--all", "--format", "pdf"], "--format"),
        ([], "name a customer"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    out = tmp_path / "out"
    capsys.readouterr()
    code = world.cli("statement", *args, "--out", str(out))
    captured = capsys.readouterr()
    assert code == 2
    assert says in captured.err
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not out.exists() or not list(out.iterdir())


def test_a_customer_owing_nothing_gets_a_line_and_no_file(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = _reconcile_customers(world, capsys)
    owing = {c["customer_id"] for c in customers if Decimal(c["balance"]) != 0}
    settled = [c["id"] for c in world.sim.data.customers if c["id"] not in owing]
    if not settled:
        world.pay_everything(world.never)
        settled = [world.never]
    capsys.readouterr()
    out = tmp_path / "out"
    assert world.cli("statement", settled[0], "--as-of", AS_OF, "--out", str(out)) == 0
    said = capsys.readouterr().out
    assert "nothing owed" in said
    assert not out.exists() or not list(out.iterdir())


# --- a generated ledger ------------------------------------------------------------------

CUSTOMERS = (
    "0a0a0a0a-0000-4000-8000-000000000001",
    "0a0a0a0a-0000-4000-8000-000000000002",
    "0a0a0a0a-0000-4000-8000-000000000003",
)
# Markup, tax and terms that make net, tax and gross differ and round.
TERMS = '[billing]\nmarkup_percent = "12.5"\ntax_percent = "19"\npayment_terms_days = 30\n'

_cents = st.integers(min_value=1, max_value=300_000).map(lambda c: Decimal(c) / 100)
_line = st.tuples(st.integers(0, 2), st.integers(1, 40), _cents)  # customer, quantity, price
_invoice = st.tuples(
    st.sampled_from(("EUR", "USD")), st.integers(1, 10), st.lists(_line, min_size=1, max_size=5)
)
_payment = st.tuples(
    st.integers(0, 2),  # customer
    st.sampled_from(("EUR", "USD")),
    st.integers(0, 330),  # day of 2026
    _cents,
    st.one_of(st.none(), st.integers(0, 5)),  # the invoice it quotes, if any
)
LEDGERS = st.tuples(
    st.lists(_invoice, min_size=1, max_size=5),
    st.lists(_payment, max_size=8),
    st.integers(0, 364),  # as of: a day of 2026, from the first invoice on
)


def _store_ledger(sessions: Any, ledger: tuple[Any, Any, int]) -> date:
    """Write a generated ledger as the sync and a payment import would; return its as-of date."""
    from sync.db import models

    invoices, payments, as_of_day = ledger
    now = datetime(2026, 12, 1, tzinfo=UTC)
    stamp = {"content_hash": "0" * 64, "first_seen_at": now, "synced_at": now}
    with sessions.begin() as session:
        for table in (models.Payment, models.PaymentImport, models.LineSum, models.LineItem):
            session.execute(delete(table))
        for table in (models.CollectionFlag, models.Invoice, models.Customer):
            session.execute(delete(table))
        for n, customer in enumerate(CUSTOMERS):
            session.add(models.Customer(id=customer, name=f"Customer {n}", raw={}, **stamp))
        ids = []
        for n, (currency, month, lines) in enumerate(invoices):
            invoice_id, start = f"G{n:09d}", date(2026, month, 1)
            ids.append(invoice_id)
            session.add(
                models.Invoice(
                    id=invoice_id,
                    invoice_date=date(2026, month + 1, 5),
                    billing_period_start=start,
                    billing_period_end=date(2026, month + 1, 1) - timedelta(days=1),
                    total_charges=sum(q * p for _, q, p in lines),
                    paid_amount=Decimal(0),
                    currency=currency,
                    raw={},
                    **stamp,
                )
            )
            sums: dict[str, list[Decimal]] = {}
            for i, (who, quantity, price) in enumerate(lines):
                subtotal = quantity * price
                session.add(
                    models.LineItem(
                        invoice_id=invoice_id,
                        provider="office",
                        source="v2",
                        content_hash=f"{i:064d}",
                        occurrence=1,
                        customer_id=CUSTOMERS[who],
                        product_name=f"Product {i % 3}",
                        sku_id=f"SKU{i % 2}",
                        unit_price=price,
                        quantity=Decimal(quantity),
                        subtotal=subtotal,
                        tax_total=Decimal(0),
                        total_for_customer=subtotal,
                        currency=currency,
                    )
                )
                total = sums.setdefault(CUSTOMERS[who], [Decimal(0), Decimal(0)])
                total[0] += 1
                total[1] += subtotal
            for customer, (count, subtotal) in sums.items():
                session.add(
                    models.LineSum(
                        invoice_id=invoice_id,
                        provider="office",
                        customer_id=customer,
                        currency=currency,
                        lines=int(count),
                        subtotal=subtotal,
                        total_for_customer=subtotal,
                    )
                )
        batch = models.PaymentImport(
            file_name="generated.csv",
            file_sha256="0" * 64,
            imported_at=now,
            rows_read=len(payments),
            rows_imported=len(payments),
            rows_unchanged=0,
            rows_rejected=0,
        )
        session.add(batch)
        session.flush()
        for n, (who, currency, day, amount, quotes) in enumerate(payments):
            invoice_id = None if quotes is None else ids[quotes % len(ids)]
            session.add(
                models.Payment(
                    reference=f"PAY-{invoice_id or 'ACCOUNT'}-{n:03d}",
                    customer_id=CUSTOMERS[who],
                    payment_date=date(2026, 1, 1) + timedelta(days=day),
                    amount=amount,
                    currency=currency,
                    invoice_id=invoice_id,
                    content_hash=f"{n:064d}",
                    import_id=batch.id,
                    source_row=n + 2,
                )
            )
    first = min(date(2026, month + 1, 5) for _, month, _ in invoices)
    return max(first, date(2026, 1, 1) + timedelta(days=as_of_day))


@pytest.fixture
def ledger_db(write_config: Any, db_url: str, migrated: Any) -> tuple[Any, Any]:
    from sync.config import load_settings
    from sync.db.engine import make_session_factory

    settings = load_settings(write_config(TERMS, db_url=db_url), {})
    return settings, make_session_factory(migrated)


@hyp_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledger=LEDGERS)
def test_generated_ledger_statements_equal_the_reconciliation(
    ledger_db: tuple[Any, Any], ledger: tuple[Any, Any, int]
) -> None:
    """Every customer and currency with a balance gets a statement with the reconciliation's
    balance, overdue amount, days overdue, aging, charges, payments and credit; no other."""
    from sync.reconcile import run_reconciliation
    from sync.statement import build_statements

    settings, sessions = ledger_db
    as_of = _store_ledger(sessions, ledger)
    expected = {
        (row["customer_id"], row["currency"]): row
        for row in run_reconciliation(settings, sessions, as_of).document["customers"]
        if Decimal(row["balance"]) != 0
    }
    statements, _ = build_statements(settings, sessions, [], as_of, every_customer=True)
    documents = {(s.customer_id, s.currency): s.document() for s in statements}
    assert documents.keys() == expected.keys()
    for key, row in expected.items():
        document = documents[key]
        for field in ("balance", "overdue_amount", "days_overdue", "aging", "charged", "paid"):
            assert document[field] == row[field], (key, field)
        assert document["credit"] == row["unapplied_credit"], key
        assert document["charged_net"] == row["charged_net"], key
        assert sum(Decimal(c["open"]) for c in document["charges"]) == Decimal(
            document["balance"]
        ) + Decimal(document["credit"]), key
        quantities = [p["quantity"] for c in document["charges"] for p in c["products"]]
        assert all(q.isdigit() for q in quantities), quantities  # 20, never 2E+1


# --- printed in headless Chromium -----------------------------------------------------------

# A4 portrait, 210 mm wide, less the statement's 15 mm margins, in CSS pixels (96 per inch).
PORTRAIT_WIDTH = round((210 - 2 * 15) / 25.4 * 96)


def _wide_statement_html() -> str:
    """A statement with everything that widens a column: long unbroken names and
    references, large amounts, tax, Microsoft invoice ids shown, many products."""
    from reconciliation.ledger import (
        BilledLine,
        BillingTerms,
        CustomerTerms,
        build_charges,
        build_ledgers,
    )
    from reconciliation.ledger import Payment as LedgerPayment
    from reconciliation.statement import LineSummary, StatementParty, build_statement
    from sync.statement import render_html

    customer, day = CUSTOMERS[0], date(2026, 3, 5)
    invoices = [f"G{n:09d}" for n in range(4)]
    lines = [
        BilledLine(i, day + timedelta(days=31 * n), customer, "EUR", Decimal("8765432.10"), 0)
        for n, i in enumerate(invoices)
    ]
    terms = BillingTerms(markup_percent=Decimal("12.5"), tax_percent=Decimal("19"))
    payments = [
        LedgerPayment("REMITTANCE-" + "X" * 70 + f"-{n}", customer, day, Decimal(1_000_000), "EUR")
        for n in range(3)
    ]
    (ledger,) = build_ledgers(build_charges(lines, terms), payments, date(2026, 11, 30))
    products = [
        LineSummary(
            invoice,
            "Microsoft 365 E5 (no Teams) with Copilot and Defender for Endpoint Plan 2" + "_" * 40,
            "CFQ7TTC0LFLX:0001:" + "Z" * 40,
            Decimal("123456.789"),
            Decimal(10_000),
            Decimal("1234567.89"),
        )
        for invoice in invoices
        for _ in range(3)
    ]
    party = StatementParty(
        "Contoso Cloud Services GmbH & Co. KG — Accounts Receivable Department",
        "Hauptstraße 1\n10115 Berlin",
        "billing@contoso.example",
        "IBAN DE00 1234 5678 9012 3456 78, BIC " + "B" * 60,
        show_microsoft_invoice=True,
    )
    statement = build_statement(
        ledger,
        customer_name="Fabrikam Holdings International " + "W" * 60,
        party=party,
        terms=CustomerTerms(Decimal("12.5"), Decimal("19"), 30),
        periods={i: (day.replace(month=3 + n), None) for n, i in enumerate(invoices)},
        lines=products,
        stage="suspend",
        stage_known=True,
    )
    return render_html(statement)


def test_printed_statement_has_no_column_outside_the_page(tmp_path: Path) -> None:
    from tests import test_report_print as printing

    page = tmp_path / "statement.html"
    page.write_text(_wide_statement_html(), encoding="utf-8")
    # The report's check, on a portrait page: the statement's @page is A4 portrait.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(printing, "PRINTABLE_WIDTH", PORTRAIT_WIDTH)
        layout, pdf = printing._print_layout(page, tmp_path)
        forced, _ = printing._print_layout(page, tmp_path, "table{min-width:2000px}")
    assert layout["print"], layout
    assert PORTRAIT_WIDTH - 20 <= layout["limit"] <= PORTRAIT_WIDTH
    assert layout["tables"] >= 6  # summary, aging, charges, products ×…, payments
    assert layout["cells"] > 80
    assert layout["outside"] == [], layout
    assert forced["outside"]  # the measurement does see a column that does not fit
    assert pdf.startswith(b"%PDF-")


def test_all_when_nobody_owes_anything_says_so(ledger_db: tuple[Any, Any]) -> None:
    """G0 costs 100.00: 112.50 with markup, 133.88 with tax; the customer paid 133.88."""
    from sync.statement import build_statements

    settings, sessions = ledger_db
    paid = [(0, "EUR", 40, Decimal("133.88"), 0)]
    as_of = _store_ledger(sessions, ([("EUR", 1, [(0, 1, Decimal(100))])], paid, 60))
    statements, said = build_statements(settings, sessions, [], as_of, every_customer=True)
    assert statements == []
    assert said == [f"no customer owes anything as of {as_of}; no statement written"]


def test_a_products_amount_is_summed_exactly(ledger_db: tuple[Any, Any]) -> None:
    """Two lines of one product and price (2.20 + 13.20 = 15.40, 17.325 after the 12.5 %
    markup) show 17.33: summed as decimals, not as floats (15.399999999999999 → 17.32)."""
    from sync.statement import build_statements

    settings, sessions = ledger_db
    price = Decimal("2.2")
    lines = [(0, 1, price), *((1, 1, Decimal(1)) for _ in range(5)), (0, 6, price)]
    as_of = _store_ledger(sessions, ([("EUR", 1, lines)], [], 364))
    statements, _ = build_statements(settings, sessions, [CUSTOMERS[0]], as_of)
    (charge,) = statements[0].document()["charges"]
    amounts = {(p["product"], p["sku"]): p["amount"] for p in charge["products"]}
    assert amounts == {("Product 0", "SKU0"): "17.33"}


def _invoice_and_credit_note(payments: list[Any], lines: list[Any]) -> Any:
    """A statement of INV1 (100.00 USD) and its credit note CN1 (-40.00), with ``payments``."""
    from reconciliation.ledger import BilledLine, BillingTerms, build_charges, build_ledgers
    from reconciliation.statement import StatementParty, build_statement

    billed = [
        BilledLine("INV1", date(2026, 9, 1), "c", "USD", Decimal("100"), Decimal("100")),
        BilledLine("CN1", date(2026, 9, 15), "c", "USD", Decimal("-40"), Decimal("-40")),
    ]
    charges = build_charges(billed, BillingTerms(), {"CN1": "INV1"})
    (ledger,) = build_ledgers(charges, payments, date(2026, 11, 25))
    return build_statement(
        ledger,
        customer_name="c",
        party=StatementParty("Partner"),
        terms=BillingTerms().for_customer("c"),
        periods={},
        lines=lines,
        stage=None,
        stage_known=False,
    )


def test_a_charge_settled_by_a_credit_note_adds_up_on_its_row_and_in_the_csv() -> None:
    """100.00 charged, amended by a −40.00 credit note, then 50.00 paid: the charge's row
    shows the note's 40.00 and the payment's 50.00 settling it (gross − settled = open:
    10.00), the note's row its 40.00 used by the charge (−40.00 − −40.00 = 0.00)."""
    from reconciliation.ledger import Payment as LedgerPayment
    from sync.statement import render_csv

    payment = LedgerPayment("PAY-1", "c", date(2026, 10, 1), Decimal("50.00"), "USD")
    statement = _invoice_and_credit_note([payment], [])
    rows = {c.invoice_id: c for c in statement.charges}
    invoice, note = rows["INV1"], rows["CN1"]
    assert [(p.reference, p.paid_on, p.amount) for p in invoice.paid] == [
        ("Credit, September 2026", date(2026, 9, 15), Decimal("40.00")),
        ("PAY-1", date(2026, 10, 1), Decimal("50.00")),
    ]
    assert [(p.reference, p.amount) for p in note.paid] == [("September 2026", Decimal("-40.00"))]
    for row in statement.charges:
        assert row.gross - sum((p.amount for p in row.paid), Decimal(0)) == row.open
    assert (statement.charged, statement.paid, statement.balance) == (
        Decimal("60.00"),
        Decimal("50.00"),
        Decimal("10.00"),
    )
    # The CSV says the same: each charge's gross less its paid rows is its open.
    table = list(csv.DictReader(io.StringIO(render_csv(statement))))
    for charge in (r for r in table if r["section"] == "charge"):
        settled = sum(
            Decimal(r["amount"])
            for r in table
            if r["section"] == "paid" and r["charge"] == charge["charge"]
        )
        assert Decimal(charge["gross"]) - settled == Decimal(charge["open"]), charge["charge"]


def test_the_csv_writes_a_credit_notes_negative_unit_price_as_a_number() -> None:
    from reconciliation.statement import LineSummary
    from sync.statement import render_csv

    credit = LineSummary("CN1", "Product", "SKU", Decimal("-20"), Decimal("2"), Decimal("-40"))
    statement = _invoice_and_credit_note([], [credit])
    table = list(csv.DictReader(io.StringIO(render_csv(statement))))
    (product,) = [r for r in table if r["section"] == "product"]
    assert (product["net"], product["quantity"]) == ("-40.00", "2")
    assert product["unit_price"] == "-20.00"
