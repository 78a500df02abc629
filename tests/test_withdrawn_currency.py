"""Microsoft's bills of years past are read in the currency they were billed in, even one
ISO 4217 has since withdrawn (HRK, the Croatian kuna, until Croatia took the euro in 2023);
so are the payments of those years: a payment file's row in a withdrawn currency is taken
when dated before the currency's withdrawal, and refused after it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.partner_center.export_lines import export_line_items
from connectors.partner_center.line_item import of_invoice, read_line
from connectors.partner_center.records import LineSource, Provider
from connectors.simulator.catalog import V2_ONLY_FROM
from connectors.simulator.data import Dataset, Invoice, Scale
from connectors.simulator.wire import dumps, pascal
from reconciliation.currencies import MINOR_UNITS, WITHDRAWALS, WITHDRAWN, Withdrawal
from reconciliation.errors import ConfigError
from reconciliation.money import is_iso_currency, minor_unit, round_money
from sync.config import load_settings
from sync.jobs import SyncOptions, run_sync
from sync.payments import import_payments
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


@pytest.mark.parametrize(
    ("code", "last_day", "successor", "rate"),
    [
        ("HRK", date(2023, 1, 14), "EUR", "7.53450"),  # kuna cash taken until 14 January
        ("LTL", date(2015, 1, 15), "EUR", "3.45280"),
        ("BYR", date(2016, 12, 31), "BYN", "10000"),
        ("MRO", date(2018, 6, 30), "MRU", "10"),
        ("STD", date(2018, 6, 30), "STN", "1000"),
        ("VEF", date(2018, 8, 19), "VES", "100000"),
        ("CUC", date(2021, 6, 30), "CUP", None),
        ("SLL", date(2024, 12, 31), "SLE", "1000"),
        ("ZWL", date(2024, 8, 31), "ZWG", None),
        ("ANG", date(2025, 6, 30), "XCG", "1"),
    ],
)
def test_a_withdrawn_currency_is_refused_from_the_day_after_it_was_last_legal_tender(
    code: str, last_day: date, successor: str, rate: str | None
) -> None:
    fixed = None if rate is None else Decimal(rate)
    assert WITHDRAWALS[code] == Withdrawal(last_day + timedelta(days=1), successor, fixed)


def test_every_withdrawn_currency_has_its_withdrawal_and_an_active_successor() -> None:
    assert set(WITHDRAWALS) == set(WITHDRAWN)
    assert all(w.by in MINOR_UNITS for w in WITHDRAWALS.values())


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_payment_in_a_withdrawn_currency_dated_after_its_withdrawal_is_refused(
    write_config, migrated, tmp_path: Path, capsys, dry_run: bool
) -> None:
    known = [(C1, "Contoso", "contoso.onmicrosoft.com")]
    settings, sessions = open_books(write_config, migrated, known)
    path = one_row(tmp_path, f"{C1},2023-03-01,12.50,HRK,P-1,", HEADER)
    code, lines = pcsync_import(settings, path, capsys, *(["--dry-run"] if dry_run else []))
    assert code == 2
    assert lines == [
        "pcsync: error: payments.csv:2: currency: HRK was withdrawn on 2023-01-15 (replaced by "
        "EUR); a payment dated 2023-03-01 is in a currency in use: enter it in EUR naming its "
        "HRK invoice in the invoice column: it settles that invoice at the fixed rate 7.53450; "
        "or fix the date (nothing imported; fix it, or use --skip-bad-rows)"
    ]
    assert unchanged(sessions)


def test_a_payment_in_a_withdrawn_currency_of_its_time_is_taken_by_the_dry_run(
    write_config, migrated, tmp_path: Path, capsys
) -> None:
    known = [(C1, "Contoso", "contoso.onmicrosoft.com")]
    settings, sessions = open_books(write_config, migrated, known)
    path = one_row(tmp_path, f"{C1},2022-12-20,12.50,HRK,P-1,", HEADER)
    code, lines = pcsync_import(settings, path, capsys, "--dry-run")
    assert (code, lines) == (0, [])
    assert unchanged(sessions)


def _synced_kuna_debt(
    start_simulator: Any, db_url: str, tmp_path: Path, as_of: date
) -> tuple[Any, sa.Engine, Any, Any]:
    """A world billed in kuna, synced as of ``as_of``: a customer's HRK ledger owing."""
    sim = start_simulator(anchor=as_of, scale=Scale(customers=6, invoices=3))
    _in_kuna(sim.data)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    before = run_reconciliation(settings, sessions, as_of)
    ledger = next(g for g in before.ledgers if g.currency == "HRK" and g.balance > 0)
    return settings, engine, sessions, ledger


def test_a_payment_in_a_withdrawn_currency_of_its_time_settles_a_charge_in_it(
    start_simulator, db_url, tmp_path: Path
) -> None:
    as_of = date(2022, 12, 28)
    settings, engine, sessions, ledger = _synced_kuna_debt(start_simulator, db_url, tmp_path, as_of)
    invoice, owed = next((i, a) for i, a in ledger.open_amounts.items() if a > 0)
    path = tmp_path / "payments.csv"
    path.write_text(f"{HEADER}{ledger.customer_id},2022-12-20,{owed},HRK,KN-1,{invoice}\n")

    import_payments(settings, sessions, path)

    with engine.connect() as c:
        stored = c.execute(sa.text("SELECT payment_date, amount, currency FROM payments")).one()
    assert (str(stored[0])[:10], Decimal(stored[1]), stored[2]) == ("2022-12-20", owed, "HRK")
    after = run_reconciliation(settings, sessions, as_of)
    (settled,) = [
        g for g in after.ledgers if (g.customer_id, g.currency) == (ledger.customer_id, "HRK")
    ]
    assert settled.open_amounts[invoice] == 0
    assert settled.balance == ledger.balance - owed
    engine.dispose()


def test_a_withdrawn_currency_is_not_one_microsoft_bills_in_now(write_config) -> None:
    path = write_config('[billing]\ncurrencies = ["EUR", "HRK"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, {"PCSYNC_CLIENT_SECRET": "secret"})
    assert info.value.problems == (
        '[billing] currencies #2: expected an ISO 4217 currency code like "USD", got "HRK"',
    )


def test_a_kuna_debt_paid_in_euro_after_the_changeover_is_settled_at_the_fixed_rate(
    start_simulator, db_url, tmp_path: Path
) -> None:
    """As the refusal of a 2023 HRK payment advises: the payment entered in EUR, naming its
    HRK invoice (in any case), settles that invoice at 7.53450 HRK per EUR."""
    as_of = date(2023, 2, 15)
    settings, engine, sessions, ledger = _synced_kuna_debt(start_simulator, db_url, tmp_path, as_of)
    invoice, owed = next((i, a) for i, a in ledger.open_amounts.items() if a > 0)
    euros = round_money(owed / Decimal("7.53450"), "EUR")
    path = tmp_path / "payments.csv"
    path.write_text(f"{HEADER}{ledger.customer_id},2023-02-01,{euros},EUR,EU-1,{invoice.lower()}\n")
    import_payments(settings, sessions, path)
    after = run_reconciliation(settings, sessions, as_of)
    engine.dispose()
    own = {g.currency: g for g in after.ledgers if g.customer_id == ledger.customer_id}
    assert own["HRK"].open_amounts[invoice] == 0, (owed, euros)
    assert own["HRK"].paid == ledger.paid + owed
    (conversion,) = own["HRK"].conversions
    assert str(conversion) == f"{euros} EUR at 7.53450 = {owed} HRK"
    assert (own["EUR"].paid, own["EUR"].unapplied) == (0, 0)
    (row,) = [p for p in after.document["payments"] if p["reference"] == "EU-1"]
    assert (row["applied"], row["unapplied"]) == (str(euros), "0.00")


def test_a_late_payment_in_a_withdrawn_currency_without_a_fixed_rate_is_told_to_fix_it(
    write_config, migrated, tmp_path: Path, capsys
) -> None:
    known = [(C1, "Contoso", "contoso.onmicrosoft.com")]
    settings, sessions = open_books(write_config, migrated, known)
    path = one_row(tmp_path, f"{C1},2024-10-01,12.50,ZWL,P-1,", HEADER)
    code, lines = pcsync_import(settings, path, capsys)
    assert code == 2
    assert lines == [
        "pcsync: error: payments.csv:2: currency: ZWL was withdrawn on 2024-09-01 (replaced by "
        "ZWG); a payment dated 2024-10-01 is in a currency in use: fix the currency and "
        "amount, or the date (nothing imported; fix it, or use --skip-bad-rows)"
    ]
    assert unchanged(sessions)
