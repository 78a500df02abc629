"""Customer statements: the ledger's figures, no Microsoft invoice ids unless asked, bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

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
