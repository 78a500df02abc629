"""Complete or loud: a sync has everything Microsoft lists, or says what it lacks and why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.partner_center.errors import PermissionDeniedError
from sync.jobs import SyncIncompleteError, SyncOptions, run_sync
from sync.runtime.lock import run_lock
from sync.runtime.runs import list_runs
from tests.conftest import SIM_ANCHOR
from tests.test_sync import setup


def _count(engine: sa.Engine, query: str, **params: object) -> int:
    with engine.connect() as c:
        return int(c.scalar(sa.text(query), params) or 0)


def _stored_invoices(engine: sa.Engine) -> set[str]:
    with engine.connect() as c:
        return set(c.scalars(sa.text("SELECT DISTINCT invoice_id FROM invoice_line_items")))


def _cli(settings: Any, sim: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sync.cli", "--config", str(settings.source), *args]
    environment = {**os.environ, "PCSYNC_CLIENT_SECRET": sim.config.client_secret, **env}
    return subprocess.run(command, env=environment, capture_output=True, text=True, check=False)


# Each unit kind with one record Microsoft serves that pcsync cannot read: how to spoil it,
# then what must still be stored (everything of every other unit).
def _spoil_customer(sim: Any) -> str:
    tenant = str(sim.data.customers[4]["id"])
    sim.data.malformed[f"customer:{tenant}"] = {"id": None, "companyProfile": {"domain": "x"}}
    return tenant


def _spoil_subscription(sim: Any) -> str:
    customer = sim.data.customers[2]["id"]
    sim.data.subscriptions[customer][0]["status"] = "hibernating"
    return customer


def _spoil_invoice(sim: Any) -> str:
    invoice = sim.data.invoices[1]
    sim.data.malformed[f"invoice:{invoice.id}"] = {"invoiceDate": "the 5th of never"}
    return invoice.id


def _spoil_line(sim: Any) -> str:
    invoice = sim.data.invoices[2]
    sim.data.malformed[f"line:{invoice.id}:3"] = {"currency": None}
    return invoice.id


def _spoil_unbilled(sim: Any) -> str:
    sim.data.malformed["unbilled:USD:1"] = {"chargeStartDate": "not a date"}
    return "USD:current"


SPOILERS = {
    "customers": _spoil_customer,
    "subscriptions": _spoil_subscription,
    "invoices": _spoil_invoice,
    "lineitems": _spoil_line,
    "unbilled": _spoil_unbilled,
}


@pytest.mark.parametrize("unit", list(SPOILERS))
def test_an_unreadable_record_fails_only_its_unit_and_the_run_is_partial(
    start_simulator, db_url, tmp_path, unit: str
) -> None:
    sim = start_simulator()
    key = SPOILERS[unit](sim)
    settings, engine, _sessions = setup(sim, db_url, tmp_path)
    finished = _cli(settings, sim, "sync")
    assert finished.returncode == 1, finished.stderr
    assert "missing" in finished.stderr
    assert "Traceback" not in finished.stderr
    runs = json.loads(_cli(settings, sim, "runs", "--json").stdout)["runs"]
    (run,) = runs
    assert run["status"] == "partial"
    assert [m["unit"] for m in run["completeness"]["missing"]] == [unit]
    (record,) = run["quarantined"]
    assert record["unit"] == unit
    assert record["payload"]  # the record as Microsoft sent it
    assert record["source"]
    assert "?" not in record["source"]  # no query string: it may carry a SAS token
    assert record["key"] == "list" if unit in ("customers", "invoices") else key in record["key"]
    # Every other unit is stored.
    customers = len(sim.data.customers) - (unit == "customers")
    assert _count(engine, "SELECT count(*) FROM customers") == customers
    invoices = {i.id for i in sim.data.invoices} - (
        {key} if unit in ("invoices", "lineitems") else set()
    )
    assert _stored_invoices(engine) == invoices
    left_out = key if unit in ("customers", "subscriptions") else None
    expected_subs = sum(
        len(subs) for cid, subs in sim.data.subscriptions.items() if cid != left_out
    )
    assert _count(engine, "SELECT count(*) FROM subscriptions") == expected_subs
    unbilled = _count(engine, "SELECT count(*) FROM unbilled_line_items WHERE currency = 'USD'")
    assert (unbilled == 0) == (unit == "unbilled")
    engine.dispose()


def test_an_app_refused_every_customer_fails_the_run_with_what_to_grant(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    sim.config.refused_customers = {c["id"]: "" for c in sim.data.customers}  # bare 403s
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(PermissionDeniedError, match=r"App management.*Admin agent"):
        run_sync(settings, engine, sessions, SyncOptions(only=("customers", "subscriptions")))
    assert list_runs(sessions)[0].status == "failed"
    assert _count(engine, "SELECT count(*) FROM subscriptions") == 0
    finished = _cli(settings, sim, "sync", "--only", "customers,subscriptions")
    assert finished.returncode == 1
    (error,) = [line for line in finished.stderr.splitlines() if line.startswith("pcsync: error")]
    assert "App management" in error  # one line, with the remedy
    engine.dispose()


def test_more_than_half_refused_is_the_apps_rights_a_few_are_missing_units(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    ids = [c["id"] for c in sim.data.customers]
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    sim.config.refused_customers = {cid: "900150" for cid in ids[: len(ids) // 2 + 1]}
    with pytest.raises(PermissionDeniedError):
        run_sync(settings, engine, sessions, SyncOptions(only=("customers", "subscriptions")))
    sim.config.refused_customers = {ids[0]: "900150"}
    with pytest.raises(SyncIncompleteError, match=f"subscriptions {ids[0]}: refused"):
        run_sync(settings, engine, sessions, SyncOptions(only=("customers", "subscriptions")))
    assert list_runs(sessions)[0].status == "partial"
    stored = _count(engine, "SELECT count(DISTINCT customer_id) FROM subscriptions")
    assert stored == len(ids) - 1
    engine.dispose()


def test_a_customer_whose_relationship_ended_is_skipped_and_the_run_succeeds(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    ended = sim.data.customers[3]["id"]
    sim.config.refused_customers = {ended: "20002"}  # Microsoft's "no commerce relationship"
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_id = run_sync(settings, engine, sessions, SyncOptions(only=("customers", "subscriptions")))
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert view.status == "succeeded"
    assert view.counts["subscriptions"]["customers_skipped"] == 1
    owners = _count(engine, "SELECT count(*) FROM subscriptions WHERE customer_id = :c", c=ended)
    assert owners == 0
    engine.dispose()


def test_a_killed_sync_is_shown_abandoned_and_the_next_one_records_it(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    killed = _cli(settings, sim, "sync", PCSYNC_FAILPOINT="invoice.committed:2=kill")
    assert killed.returncode == -9  # SIGKILL, at the failpoint: after the second invoice
    assert _count(engine, "SELECT count(DISTINCT invoice_id) FROM invoice_line_items") == 2
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT status FROM runs")) == "running"  # as stored
    (view,) = list_runs(sessions)
    assert view.status == "abandoned"
    with run_lock(engine, kind="sync", holder="collections apply"):  # held, not by the sync
        (view,) = list_runs(sessions)
    assert view.status == "abandoned"
    run_sync(settings, engine, sessions, SyncOptions())
    with engine.connect() as c:
        statuses = list(c.scalars(sa.text("SELECT status FROM runs ORDER BY id")))
    assert statuses == ["abandoned", "succeeded"]
    assert _stored_invoices(engine) == {i.id for i in sim.data.invoices}
    engine.dispose()


def test_last_months_unbilled_lines_are_kept_until_its_invoice_arrives(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    pending = [i for i in sim.data.invoices if i.period_start == date(2026, 10, 1)]
    assert pending
    for invoice in pending:  # October's invoices are not issued yet
        sim.data.invoices.remove(invoice)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    today = date(2026, 11, 3)
    sim.data.anchor = today
    run_sync(settings, engine, sessions, SyncOptions(today=today))
    previous = "SELECT count(*) FROM unbilled_line_items WHERE period = 'previous'"
    assert _count(engine, previous) > 0
    with engine.connect() as c:
        starts = set(
            c.scalars(
                sa.text(
                    "SELECT DISTINCT charge_start_date FROM unbilled_line_items "
                    "WHERE period = 'previous'"
                )
            )
        )
    assert {str(d)[:7] for d in starts} == {"2026-10"}
    sim.data.invoices.extend(pending)  # issued: October's lines are billed now
    run_sync(settings, engine, sessions, SyncOptions(today=today))
    assert _count(engine, previous) == 0
    assert _stored_invoices(engine) >= {i.id for i in pending}
    engine.dispose()


def _position(result: Any) -> tuple[dict[tuple[str, str], Decimal], dict[str, Decimal], list[Any]]:
    balances = {(g.customer_id, g.currency): g.balance for g in result.ledgers}
    owed: dict[str, Decimal] = {}
    for invoice in result.invoices:
        owed[invoice.currency] = owed.get(invoice.currency, Decimal(0)) + invoice.outstanding
    mismatches = [f for f in result.findings if f.kind == "invoice_total_mismatch"]
    return balances, owed, mismatches


def test_a_credit_note_issued_after_its_invoice_was_synced_changes_what_is_owed_exactly(
    start_simulator, db_url, tmp_path
) -> None:
    from sync.reconcile import run_reconciliation

    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    before = _position(run_reconciliation(settings, sessions, SIM_ANCHOR))
    invoice = max(
        (i for i in sim.data.invoices if i.currency == "USD"), key=lambda i: i.invoice_date
    )
    note = sim.data.issue_credit_note(invoice.id, issued=SIM_ANCHOR - timedelta(days=1))
    asked_before = len(sim.requests)
    run_id = run_sync(settings, engine, sessions, SyncOptions())  # incremental
    fetched = [p for _, p, _ in sim.requests[asked_before:]]
    assert not any(invoice.id in p for p in fetched)  # the complete invoice is not re-read
    with engine.connect() as c:
        amends = c.scalar(
            sa.text("SELECT amends_invoice_id FROM invoices WHERE id = :i"), {"i": note.id}
        )
        lines = c.execute(
            sa.text("SELECT customer_id, subtotal FROM invoice_line_items WHERE invoice_id = :i"),
            {"i": note.id},
        ).all()
    assert amends == invoice.id
    assert len(lines) == sim.data.line_count(note) == 2
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert view.completeness is not None
    (entry,) = [d for d in view.completeness["documents"] if d["invoice"] == note.id]
    assert entry["status"] == "stored"
    assert entry["amends"] == invoice.id
    assert Decimal(entry["line_total"]) == Decimal(entry["microsoft_total"]) < 0

    balances, owed, mismatches = _position(run_reconciliation(settings, sessions, SIM_ANCHOR))
    credit: dict[tuple[str, str], Decimal] = {}
    for customer_id, subtotal in lines:
        key = (customer_id, "USD")
        credit[key] = credit.get(key, Decimal(0)) + Decimal(subtotal)
    assert credit
    for key, amount in credit.items():  # markup and tax are 0: the charge is the cost
        assert balances[key] == before[0][key] + amount
    untouched = set(balances) - set(credit)
    assert all(balances[key] == before[0][key] for key in untouched)
    note_total = sim.data._amount(note.total_minor, "USD")
    assert owed["USD"] == before[1]["USD"] + note_total
    assert mismatches == before[2] == []
    engine.dispose()


def test_reports_say_at_the_top_whether_microsofts_data_is_complete(
    start_simulator, db_url, tmp_path, monkeypatch
) -> None:
    from openpyxl import load_workbook

    from sync.cli import main

    sim = start_simulator()
    spoiled = _spoil_line(sim)
    settings, engine, _sessions = setup(sim, db_url, tmp_path)
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    base = ["--config", str(settings.source)]
    assert main([*base, "sync"]) == 1
    out = tmp_path / "reports"
    assert main([*base, "report", "--as-of", "2026-11-25", "--out", str(out)]) == 0
    html = (out / "pcsync-2026-11-25.html").read_text()
    assert "Incomplete:" in html
    assert f"lineitems {spoiled}:one_time" in html
    document = json.loads((out / "pcsync-2026-11-25.json").read_text())
    assert document["completeness"]["complete"] is False
    title = load_workbook(out / "pcsync-2026-11-25.xlsx").properties.title
    assert "INCOMPLETE" in str(title)

    sim.data.malformed.clear()
    assert main([*base, "sync"]) == 0
    assert main([*base, "reconcile", "--as-of", "2026-11-25"]) == 0
    assert main([*base, "report", "--as-of", "2026-11-25", "--out", str(out)]) == 0
    html = (out / "pcsync-2026-11-25.html").read_text()
    assert "Incomplete:" not in html
    assert "Microsoft&#39;s data complete as of" in html or "data complete as of" in html
    engine.dispose()


def test_an_app_without_the_graph_billing_permission_fails_with_what_to_grant(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator(graph_billing_permission=False)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(PermissionDeniedError, match=r"PartnerBilling\.Read\.All.*admin consent"):
        run_sync(settings, engine, sessions, SyncOptions())
    assert list_runs(sessions)[0].status == "failed"
    engine.dispose()


def test_an_invoice_without_a_date_is_quarantined_and_the_others_are_stored(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    bad = sim.data.invoices[0]
    sim.data.malformed[f"invoice:{bad.id}"] = {"invoiceDate": "0001-01-01T00:00:00"}
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match="without an invoice date"):
        run_sync(settings, engine, sessions, SyncOptions())
    assert _stored_invoices(engine) == {i.id for i in sim.data.invoices} - {bad.id}
    assert _count(engine, "SELECT count(*) FROM quarantine") == 1
    engine.dispose()


def test_only_a_sync_of_everything_can_say_the_data_is_complete(
    start_simulator, db_url, tmp_path
) -> None:
    from sync.completeness import data_completeness

    sim = start_simulator()
    _spoil_line(sim)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError):
        run_sync(settings, engine, sessions, SyncOptions())
    run_sync(settings, engine, sessions, SyncOptions(only=("customers",)))  # succeeds
    state = data_completeness(sessions)
    assert state["complete"] is False
    assert [m["unit"] for m in state["missing"]] == ["lineitems"]
    engine.dispose()


def test_last_month_counts_as_invoiced_only_by_its_new_commerce_invoice_with_its_lines() -> None:
    from connectors.partner_center import Invoice, Provider
    from sync.jobs import _invoiced

    october = (date(2026, 10, 1), date(2026, 10, 31))

    def invoice(start: date, end: date, provider: Provider, amends: str | None = None) -> Invoice:
        return Invoice(
            "X", date(2026, 11, 5), start, end, Decimal(1), Decimal(0), "USD", None, None,
            (provider,), {}, amends,
        )  # fmt: skip

    legacy = invoice(date(2026, 9, 15), date(2026, 10, 14), Provider.OFFICE)
    nce = invoice(*october, Provider.ONE_TIME)
    note = invoice(*october, Provider.ONE_TIME, amends="G1")
    assert not _invoiced([legacy], "USD", october, {"X:office"})
    assert not _invoiced([nce], "USD", october, set())  # listed, its lines not yet stored
    assert not _invoiced([note], "USD", october, {"X:one_time"})
    assert _invoiced([nce], "USD", october, {"X:one_time"})
    assert not _invoiced([nce], "EUR", october, {"X:one_time"})


def test_a_nul_in_a_customer_name_is_stored_as_a_replacement_character(
    start_simulator, db_url, tmp_path
) -> None:
    """PostgreSQL cannot hold NUL in text or JSON: the sync stores U+FFFD, on both databases."""
    sim = start_simulator()
    customer = sim.data.customers[2]
    customer["companyProfile"]["companyName"] = "Contoso\x00 Ltd"
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions(only=("customers",)))
    with engine.connect() as c:
        name = c.scalar(sa.text("SELECT name FROM customers WHERE id = :i"), {"i": customer["id"]})
    assert name == "Contoso\ufffd Ltd"
    engine.dispose()


@pytest.mark.parametrize("blank", [None, ""])
def test_a_line_without_a_subtotal_is_unreadable_not_a_charge_of_zero(
    start_simulator, db_url, tmp_path, blank: object
) -> None:
    """Every documented line shape carries its pre-tax amount; one without it is quarantined,
    and its invoice is missing until Microsoft serves it whole."""
    sim = start_simulator()
    invoice = sim.data.invoices[2]
    sim.data.malformed[f"line:{invoice.id}:3"] = {"subtotal": blank}
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"{invoice.id}.*without a subtotal"):
        run_sync(settings, engine, sessions, SyncOptions())
    (run,) = list_runs(sessions)
    assert run.status == "partial"
    assert run.completeness is not None
    assert [(m["unit"], m["key"].split(":")[0]) for m in run.completeness["missing"]] == [
        ("lineitems", invoice.id)
    ]
    assert invoice.id not in _stored_invoices(engine)
    assert _count(engine, "SELECT count(*) FROM quarantine WHERE unit = 'lineitems'") == 1
    engine.dispose()


def test_an_invoice_listed_without_its_total_is_unreadable_not_a_bill_of_zero(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    bad = sim.data.invoices[0]
    sim.data.malformed[f"invoice:{bad.id}"] = {"totalCharges": None}
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"invoice {bad.id} without totalCharges"):
        run_sync(settings, engine, sessions, SyncOptions())
    assert _count(engine, "SELECT count(*) FROM invoices WHERE id = :i", i=bad.id) == 0
    assert _stored_invoices(engine) == {i.id for i in sim.data.invoices} - {bad.id}
    assert _count(engine, "SELECT count(*) FROM quarantine WHERE unit = 'invoices'") == 1
    engine.dispose()
