"""`pcsync reconcile` over synced simulator data and imported payments, on both databases."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync.cli import main


def test_reconcile_json_is_reproducible_and_complete(
    world, db_url, tmp_path: Path, capsys, monkeypatch
) -> None:
    sim, settings, engine = world.sim, world.settings, world.engine
    payments = tmp_path / "payments.csv"
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    argv = ["--config", str(settings.source), "reconcile", "--as-of", "2026-11-25", "--json"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert first == second  # same data and date, same bytes
    document = json.loads(first)
    assert document["as_of"] == "2026-11-25"
    assert {f["kind"] for f in document["findings"]} == {
        "active_not_billed",
        # The simulator's suspended subscriptions were suspended before the first sync.
        "billed_for_suspended",
        "duplicate_line",
        "seat_mismatch",
        "unknown_subscription",
    }
    assert len(document["invoices"]) == len(sim.data.invoices)
    suspended = [f for f in document["findings"] if f["kind"] == "billed_for_suspended"]
    assert all("suspension date unknown" in f["detail"] for f in suspended)
    never = sim.data.customers[4]["id"]  # the customer who never pays
    row = next(c for c in document["customers"] if c["customer_id"] == never)
    assert row["paid"] == "0.00"
    assert Decimal(row["overdue_amount"]) > 0
    assert row["days_overdue"] > 60
    assert sum(Decimal(v) for v in row["aging"].values()) == Decimal(row["balance"])
    for customer in document["customers"]:
        assert isinstance(customer["balance"], str)
        assert Decimal(customer["charged"]) - Decimal(customer["paid"]) == Decimal(
            customer["balance"]
        )
    counted = [
        line for line in payments.read_text().splitlines()[1:] if line.split(",")[1] <= "2026-11-25"
    ]
    assert len(document["payments"]) == len(counted)
    for payment in document["payments"]:
        assert Decimal(payment["applied"]) + Decimal(payment["unapplied"]) == Decimal(
            payment["amount"]
        )
    overpayer = sim.data.customers[6]["id"]  # pays 110% of its first invoice
    assert any(
        p["customer_id"] == overpayer and Decimal(p["unapplied"]) == 0 and len(p["applied_to"]) >= 1
        for p in document["payments"]
    )
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM reconciliation_runs")).scalar() == 2
        stored = c.execute(sa.text("SELECT count(*) FROM reconciliation_findings")).scalar()
        assert stored == 2 * len(document["findings"])
        balances = c.execute(sa.text("SELECT count(*) FROM customer_balances")).scalar()
        assert balances == 2 * len(document["customers"])
    engine.dispose()


def test_bad_as_of_is_a_one_line_error(write_config, capsys) -> None:
    code = main(["--config", str(write_config()), "reconcile", "--as-of", "25/11/2026"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == (
        "pcsync: error: --as-of: expected a date like 2026-11-25, got '25/11/2026'"
    )


def test_the_lines_selected_for_checks_raise_every_finding_all_lines_would(
    world, db_url, tmp_path: Path
) -> None:
    """The reconciliation reads only candidate lines; with every line the findings are the same."""
    from datetime import UTC, date, datetime

    import sqlalchemy as sa

    from reconciliation.checks import check_bill
    from reconciliation.result import reconcile
    from sync.db import models
    from sync.lines import rebuild_line_sums
    from sync.reconcile import USAGE_COLUMNS, LineFact, load_inputs, usage_fields
    from sync.reconcile import money as _money

    settings, engine, sessions = world.settings, world.engine, world.sessions
    with sessions.begin() as session:
        # A line of a customer Partner Center does not list, and a subscription suspended
        # since before the latest invoice's charges.
        line = session.scalars(sa.select(models.LineItem).limit(1)).one()
        session.add(
            models.LineItem(
                **{
                    c.name: getattr(line, c.name)
                    for c in models.LineItem.__table__.columns
                    if c.name not in ("id", "customer_id", "content_hash")
                },
                customer_id="99999999-0000-4000-8000-000000000000",
                content_hash="0" * 64,
            )
        )
        sub = session.scalars(
            sa.select(models.Subscription).where(models.Subscription.status == "active").limit(1)
        ).one()
        sub.status = "suspended"
        session.add(
            models.SubscriptionStatusChange(
                subscription_id=sub.id,
                customer_id=sub.customer_id,
                old_status="active",
                new_status="suspended",
                observed_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        rebuild_line_sums(session)  # as a sync would have stored them with the line
    as_of = date(2026, 11, 25)
    with sessions() as session:
        inputs = load_inputs(session, settings, as_of)
        every_line = [
            LineFact(
                row.invoice_id,
                row.customer_id,
                row.subscription_id,
                row.currency,
                _money(row.subtotal),
                _money(row.total_for_customer),
                row.billable_quantity,
                row.charge_type,
                row.charge_start_date,
                row.charge_end_date,
                row.content_hash,
                row.occurrence,
                product_id=row.product_id,
                sku_id=row.sku_id,
                quantity=row.quantity,
                unit_price=row.unit_price,
                **usage_fields([getattr(row, name) for name in USAGE_COLUMNS]),
            )
            for row in session.scalars(sa.select(models.LineItem))
        ]
    findings = reconcile(inputs).findings
    kinds = {f.kind for f in findings}
    assert {
        "unknown_customer",
        "billed_for_suspended",
        "duplicate_line",
        "seat_mismatch",
        "active_not_billed",
    } <= kinds, kinds
    counted = [h for h, _ in inputs.invoices if h.invoice_date <= as_of]
    everything = check_bill(counted, every_line, inputs.subscriptions, list(inputs.customers))
    assert [f for f in findings if f not in everything] == []
    assert [f for f in everything if f not in findings] == []
    assert findings == everything
    assert len(inputs.lines) < len(every_line)  # and it did not read them all
    engine.dispose()


def test_a_charge_billed_again_under_a_fresh_order_id_is_a_possible_duplicate(
    world, db_url, tmp_path: Path
) -> None:
    """A copy of a billed line with its own order and alternate ids: one duplicate_line for
    the pair, amount the copy's subtotal; a copy at another unit price is none, nor one of
    another SKU (alike in the columns the database groups by, not in the others)."""
    from datetime import date

    from reconciliation.result import reconcile
    from sync.db import models
    from sync.lines import rebuild_line_sums
    from sync.reconcile import load_inputs

    settings, engine, sessions = world.settings, world.engine, world.sessions
    with sessions.begin() as session:
        line = session.scalars(
            sa.select(models.LineItem)
            .where(models.LineItem.charge_type == "cycleCharge", models.LineItem.occurrence == 1)
            .order_by(models.LineItem.id)
            .limit(1)
        ).one()
        copied = {
            c.name: getattr(line, c.name)
            for c in models.LineItem.__table__.columns
            if c.name not in ("id", "content_hash")
        }
        changes = ({}, {"unit_price": line.unit_price + 1}, {"sku_id": "another-sku"})
        for n, changed in enumerate(changes, start=1):
            fresh = {"order_id": f"fresh-order-{n}", "alternate_id": f"fresh-{n}"}
            session.add(
                models.LineItem(
                    **{**copied, **changed, **fresh},
                    content_hash=f"{n:064d}",
                )
            )
        rebuild_line_sums(session)
        invoice_id, subscription_id, subtotal = line.invoice_id, line.subscription_id, line.subtotal
    with sessions() as session:
        findings = reconcile(load_inputs(session, settings, date(2026, 11, 25))).findings
    (found,) = [
        f
        for f in findings
        if (f.kind, f.invoice_id, f.subscription_id)
        == ("duplicate_line", invoice_id, subscription_id)
    ]
    assert found.amount == subtotal
    assert "possible duplicate: 2 lines" in found.detail
    engine.dispose()


def test_tax_inclusive_payments_settle_a_customer_charged_with_tax(
    start_simulator, db_url, tmp_path: Path
) -> None:
    """[billing] markup 10 %, tax 19 %: a customer paying each charge's gross, tax included,
    owes 0.00 and has no credit; the document shows net + tax = gross."""
    from collections import defaultdict

    from reconciliation.money import round_money
    from sync.config import load_settings
    from sync.db import models
    from sync.jobs import SyncOptions, run_sync
    from sync.payments import import_payments
    from sync.reconcile import run_reconciliation
    from tests.test_sync import setup

    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    config = settings.source
    config.write_text(
        config.read_text() + '\n[billing]\nmarkup_percent = "10"\ntax_percent = "19"\n'
    )
    settings = load_settings(config, {"PCSYNC_CLIENT_SECRET": sim.config.client_secret})
    run_sync(settings, engine, sessions, SyncOptions())
    customer = sim.data.customers[0]["id"]
    as_of = sim.data.anchor
    costs: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    with sessions() as session:
        rows = session.execute(
            sa.select(
                models.LineItem.invoice_id,
                models.Invoice.invoice_date,
                models.LineItem.currency,
                models.LineItem.subtotal,
            )
            .join(models.Invoice, models.Invoice.id == models.LineItem.invoice_id)
            .where(models.LineItem.customer_id == customer, models.Invoice.invoice_date <= as_of)
        )
        for invoice_id, day, currency, subtotal in rows:
            costs[(invoice_id, day.isoformat(), currency)] += subtotal
    assert costs
    payments = tmp_path / "tax-inclusive.csv"
    payments.write_text(
        "customer,date,amount,currency,reference,invoice\n"
        + "".join(
            f"{customer},{day},"
            f"{round_money(cost * Decimal('1.1') * Decimal('1.19'), currency)},"
            f"{currency},TAX-{invoice_id},{invoice_id}\n"
            for (invoice_id, day, currency), cost in sorted(costs.items())
        )
    )
    import_payments(settings, sessions, payments)
    result = run_reconciliation(settings, sessions, as_of)
    (ledger,) = [row for row in result.ledgers if row.customer_id == customer]
    assert ledger.charged_tax > 0
    assert (ledger.balance, ledger.unapplied) == (Decimal(0), Decimal(0))
    (row,) = [c for c in result.document["customers"] if c["customer_id"] == customer]
    assert (row["balance"], row["unapplied_credit"], row["exposure"]) == ("0.00", "0.00", "0.00")
    assert Decimal(row["charged_net"]) + Decimal(row["charged_tax"]) == Decimal(row["charged"])
    engine.dispose()


def test_the_cycle_collector_is_paused_only_while_the_body_runs() -> None:
    import gc

    from sync.runtime.gcpause import cycle_collection_paused

    def fail() -> None:
        with cycle_collection_paused():
            assert not gc.isenabled()
            raise RuntimeError("a failing reconciliation")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        fail()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # nothing left outside the collector's reach
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


@pytest.mark.parametrize("gone", ["subscription", "customer"])
def test_a_subscription_microsoft_no_longer_lists_is_not_active_not_billed(
    world, db_url, gone: str
) -> None:
    """Delisted, or of a delisted customer: its 'active' is the last status seen, not
    Microsoft's now, so its absence from the bill is no finding; the others stay."""
    from datetime import UTC, date, datetime

    from reconciliation.result import reconcile
    from sync.db import models
    from sync.reconcile import load_inputs

    def findings() -> list[Any]:
        with world.sessions() as session:
            return reconcile(load_inputs(session, world.settings, date(2026, 11, 25))).findings

    before = findings()
    (missing,) = [f for f in before if f.kind == "active_not_billed"]
    with world.sessions.begin() as session:
        if gone == "subscription":
            row: Any = session.get_one(models.Subscription, missing.subscription_id)
        else:
            row = session.get_one(models.Customer, missing.customer_id)
        row.delisted_at = datetime(2026, 11, 20, tzinfo=UTC)
    assert findings() == [f for f in before if f is not missing]
    world.engine.dispose()


def test_an_imported_payment_naming_an_invoice_in_lower_case_pays_that_invoice(world) -> None:  # type: ignore[no-untyped-def]
    """Microsoft's invoice ids are case-insensitive: a payment that names the customer's
    newest open invoice in lower case is applied to it, not to the oldest open charge."""
    from datetime import date

    from sync.reconcile import run_reconciliation

    today = date.today()
    before = run_reconciliation(world.settings, world.sessions, today)
    ledger = next(lg for lg in before.ledgers if lg.customer_id == world.never)
    owing = [c for c in ledger.charges if ledger.open_amounts[c.invoice_id] > 0]
    assert len(owing) > 1
    named = owing[-1]
    assert named.invoice_id != named.invoice_id.lower()
    path = world.tmp / "p.csv"
    path.write_text(
        "customer,date,amount,currency,reference,invoice\n"
        f"{world.never},{today},1.00,{ledger.currency},REMIT-1,{named.invoice_id.lower()}\n"
    )
    assert world.cli("payments", "import", str(path)) == 0
    document = run_reconciliation(world.settings, world.sessions, today).document
    [row] = [p for p in document["payments"] if p["reference"] == "REMIT-1"]
    assert row["applied_to"] == [named.invoice_id]
