"""Unbilled charges are read in every currency the partner is billed in, or the run says not.

Microsoft names a currency only through invoices: a new partner (or a new market)
accrues unbilled charges before its first invoice in that currency, and only the
configured ``[billing] currencies`` name it then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.simulator.data import Scale
from reconciliation.errors import ConfigError
from sync.config import load_settings
from sync.jobs import SyncIncompleteError, SyncOptions, run_sync
from sync.runtime.runs import list_runs
from tests.test_sync import setup


def _unbilled(engine: sa.Engine, currency: str) -> int:
    query = sa.text("SELECT count(*) FROM unbilled_line_items WHERE currency = :c")
    with engine.connect() as c:
        return int(c.scalar(query, {"c": currency}) or 0)


def _served(sim: Any, currency: str) -> int:
    """The unbilled lines Microsoft has in ``currency``: this month's and last month's."""
    return sum(len(sim.data.unbilled_lines(currency, p)) for p in ("current", "previous"))


def _with_currencies(sim: Any, path: Path, currencies: str) -> Any:
    path.write_text(path.read_text() + f"\n[billing]\ncurrencies = {currencies}\n")
    return load_settings(path, {"PCSYNC_CLIENT_SECRET": sim.config.client_secret})


def test_a_new_partner_without_invoices_is_told_to_name_its_currencies_then_has_them(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator(scale=Scale(customers=4, invoices=0))
    assert not sim.data.invoices
    usd, eur = (_served(sim, c) for c in ("USD", "EUR"))
    assert usd > 0  # charges accrue before any invoice
    assert eur > 0
    settings, engine, sessions = setup(sim, db_url, tmp_path)

    with pytest.raises(SyncIncompleteError, match="no billing currency in use is known"):
        run_sync(settings, engine, sessions, SyncOptions())
    view = list_runs(sessions)[0]
    assert view.status == "partial"
    assert view.completeness is not None
    (missing,) = view.completeness["missing"]
    assert (missing["unit"], missing["key"]) == ("unbilled", "currency")
    assert "[billing] currencies" in missing["reason"]
    assert _unbilled(engine, "USD") == _unbilled(engine, "EUR") == 0

    settings = _with_currencies(sim, tmp_path / "pcsync.toml", '["usd", "EUR"]')
    run_sync(settings, engine, sessions, SyncOptions())
    assert list_runs(sessions)[0].status == "succeeded"
    assert (_unbilled(engine, "USD"), _unbilled(engine, "EUR")) == (usd, eur)
    engine.dispose()


def test_a_partner_with_no_active_subscription_and_no_invoice_has_nothing_unbilled_to_miss(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator(scale=Scale(customers=4, invoices=0))
    for subs in sim.data.subscriptions.values():
        subs.clear()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    assert list_runs(sessions)[0].status == "succeeded"
    engine.dispose()


def test_a_configured_currency_without_an_invoice_yet_is_read_beside_the_invoiced_ones(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator(scale=Scale(customers=4, invoices=2))
    sim.data.invoices[:] = [i for i in sim.data.invoices if i.currency != "EUR"]  # a new market
    eur = _served(sim, "EUR")
    assert eur > 0
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    assert _unbilled(engine, "EUR") == 0  # nothing names EUR yet
    assert _unbilled(engine, "USD") > 0

    settings = _with_currencies(sim, tmp_path / "pcsync.toml", '["EUR"]')
    run_sync(settings, engine, sessions, SyncOptions())
    assert _unbilled(engine, "EUR") == eur

    # EUR leaves the configuration: its stored lines are still refreshed from Microsoft,
    # here to none (its customers' licences ended), not kept as they were.
    for customer in sim.data.customers:
        if sim.data.currency_of[customer["id"]] == "EUR":
            sim.data.subscriptions[customer["id"]].clear()
    (tmp_path / "pcsync.toml").write_text(
        (tmp_path / "pcsync.toml").read_text().replace('currencies = ["EUR"]', "currencies = []")
    )
    settings = load_settings(
        tmp_path / "pcsync.toml", {"PCSYNC_CLIENT_SECRET": sim.config.client_secret}
    )
    assert settings.billing.currencies == ()
    run_sync(settings, engine, sessions, SyncOptions())
    assert _unbilled(engine, "EUR") == 0
    engine.dispose()


@pytest.mark.parametrize("value", ['["EURO"]', '["XYZ"]', "[1]", '"USD"'])
def test_a_billing_currency_that_is_not_an_iso_code_is_refused_naming_the_setting(
    start_simulator, db_url, tmp_path, value: str
) -> None:
    sim = start_simulator(scale=Scale(customers=2, invoices=1))
    setup(sim, db_url, tmp_path)[1].dispose()
    with pytest.raises(ConfigError, match=r"\[billing\] currencies"):
        _with_currencies(sim, tmp_path / "pcsync.toml", value)


def test_active_subscriptions_of_customers_microsoft_no_longer_lists_accrue_nothing_to_miss(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator(scale=Scale(customers=4, invoices=0))
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match="no billing currency in use is known"):
        run_sync(settings, engine, sessions, SyncOptions())
    kept, *ended = (c["id"] for c in sim.data.customers)
    sim.data.unlisted.update(ended)  # their relationships ended: their licences stay active
    for sub in sim.data.subscriptions[kept]:
        sub["status"] = "suspended"
    run_sync(settings, engine, sessions, SyncOptions())
    assert list_runs(sessions)[0].status == "succeeded"
    engine.dispose()


def test_open_month_lines_stored_in_a_withdrawn_currency_are_cleared_without_asking(
    start_simulator, db_url, tmp_path
) -> None:
    """Lines of an open month before the changeover (HRK) are open no longer; Microsoft
    refuses unbilled requests in a withdrawn currency, so they are not asked for."""
    sim = start_simulator(scale=Scale(customers=4, invoices=1))
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    assert _unbilled(engine, "EUR") > 0
    with engine.begin() as c:  # as an old database holds them
        c.execute(sa.text("UPDATE unbilled_line_items SET currency = 'HRK' WHERE currency = 'EUR'"))
    mark = len(sim.requests)
    run_sync(settings, engine, sessions, SyncOptions())
    assert list_runs(sessions)[0].status == "succeeded"
    assert _unbilled(engine, "HRK") == 0
    assert _unbilled(engine, "EUR") > 0  # EUR is still read: its invoice lists it
    assert not [p for _, p, _ in sim.requests[mark:] if "HRK" in p.upper()]
    engine.dispose()
