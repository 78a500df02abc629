"""Microsoft's bills of years past are read in the currency they were billed in, even one
ISO 4217 has since withdrawn (HRK, the Croatian kuna, until Croatia took the euro in 2023);
money the partner enters now (a payment file) is in a currency in use.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.partner_center.export_lines import export_line_items
from connectors.partner_center.line_item import of_invoice, read_line
from connectors.partner_center.records import LineSource, Provider
from connectors.simulator.catalog import V2_ONLY_FROM
from connectors.simulator.data import Dataset, Invoice, Scale
from connectors.simulator.wire import dumps, pascal
from reconciliation.currencies import MINOR_UNITS, WITHDRAWN
from reconciliation.errors import ConfigError
from reconciliation.money import is_iso_currency, minor_unit, round_money
from sync.config import load_settings
from sync.jobs import SyncOptions, run_sync
from sync.reconcile import run_reconciliation
from sync.runtime.runs import list_runs
from tests.books import C1, open_books
from tests.test_payment_inputs import HEADER, one_row, pcsync_import, unchanged
from tests.test_sync import setup

# v1 line items (billing periods before February 2024) and the v2 export (from then on).
WORLDS = {
    "v1": {"anchor": date(2024, 3, 10), "scale": Scale(customers=6, invoices=3)},
    "v2": {},
}


def _in_kuna(data: Dataset) -> list[Invoice]:
    """The simulated partner's euro customers and their invoices, billed in HRK instead."""
    data.switch_currency("EUR", "HRK")
    invoices = [i for i in data.invoices if i.currency == "HRK"]
    assert invoices
    return invoices


@pytest.mark.parametrize("api", list(WORLDS))
def test_invoices_in_a_withdrawn_currency_are_stored_with_their_lines_and_reconciled_in_it(
    start_simulator, db_url, tmp_path: Path, api: str
) -> None:
    sim = start_simulator(**WORLDS[api])
    invoices = _in_kuna(sim.data)
    if api == "v1":
        assert any(i.period_start < V2_ONLY_FROM for i in invoices)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    (run,) = list_runs(sessions)
    assert run.status == "succeeded", run.completeness
    with engine.connect() as c:
        stored = dict(
            c.execute(
                sa.text(
                    "SELECT invoice_id, count(*) FROM invoice_line_items"
                    " WHERE currency = 'HRK' GROUP BY invoice_id"
                )
            ).all()
        )
        assert c.scalar(sa.text("SELECT count(*) FROM quarantine")) == 0
    assert stored == {i.id: sim.data.line_count(i) for i in invoices}

    result = run_reconciliation(settings, sessions, sim.data.anchor)
    rows = {r["invoice_id"]: r for r in result.document["invoices"] if r["currency"] == "HRK"}
    assert set(rows) == {i.id for i in invoices}
    for invoice in invoices:
        row = rows[invoice.id]
        total = sim.data._amount(invoice.total_minor, "HRK")
        assert (row["total"], row["lines_total"], row["difference"]) == (
            str(total),
            str(total),
            "0.00",
        )
    customers = [c for c in result.document["customers"] if c["currency"] == "HRK"]
    assert customers
    for customer in customers:
        assert all(
            Decimal(customer[key]).as_tuple().exponent == -2 for key in ("charged", "balance")
        )
    engine.dispose()


def test_the_lines_of_an_invoice_billed_in_a_withdrawn_currency_are_read_by_every_reader() -> None:
    data = Dataset(Scale(), date(2022, 11, 25))
    invoice = _in_kuna(data)[0]
    document = data.invoice_json(invoice)
    assert (document["currencyCode"], document["currencySymbol"]) == ("HRK", "kn")
    rows = [data.line_json(invoice, n) for n in range(data.line_count(invoice))]
    assert {(r["currency"], r["customerCountry"]) for r in rows} == {("HRK", "HR")}
    assert sum(r["totalForCustomer"] for r in rows) == document["totalCharges"]
    line = read_line(rows[0], invoice.id, Provider.ONE_TIME, LineSource.V1)
    assert of_invoice(line, invoice.id, "HRK") is line
    blob = [dumps(pascal(row)) for row in rows]
    exported = list(export_line_items(blob, invoice.id, "blob", currency="hrk"))
    assert [item.currency for item in exported] == ["HRK"] * len(rows)


@pytest.mark.parametrize(("code", "places"), [("HRK", 2), ("BYR", 0), ("LTL", 2), ("VEF", 2)])
def test_a_withdrawn_currency_has_its_own_minor_unit(code: str, places: int) -> None:
    assert minor_unit(code) == places
    assert round_money(Decimal("1.5"), code) == Decimal("1.5").quantize(Decimal(1).scaleb(-places))
    assert is_iso_currency(code, withdrawn=True)
    assert not is_iso_currency(code)  # not a currency to enter new money in


def test_no_code_is_both_active_and_withdrawn() -> None:
    assert not set(MINOR_UNITS) & set(WITHDRAWN)


def test_a_payment_in_a_withdrawn_currency_is_refused(
    write_config, migrated, tmp_path: Path, capsys
) -> None:
    known = [(C1, "Contoso", "contoso.onmicrosoft.com")]
    settings, sessions = open_books(write_config, migrated, known)
    path = one_row(tmp_path, f"{C1},2022-11-01,12.50,HRK,P-1,", HEADER)
    code, lines = pcsync_import(settings, path, capsys)
    assert code == 2
    assert lines == [
        "pcsync: error: payments.csv:2: currency: 'HRK' is an ISO 4217 currency no longer in "
        "use; a payment is in a currency in use (like USD, EUR) "
        "(nothing imported; fix it, or use --skip-bad-rows)"
    ]
    assert unchanged(sessions)


def test_a_withdrawn_currency_is_not_one_microsoft_bills_in_now(write_config) -> None:
    path = write_config('[billing]\ncurrencies = ["EUR", "HRK"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, {"PCSYNC_CLIENT_SECRET": "secret"})
    assert info.value.problems == (
        '[billing] currencies #2: expected an ISO 4217 currency code like "USD", got "HRK"',
    )
