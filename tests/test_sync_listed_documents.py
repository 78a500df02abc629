"""Every document Microsoft lists is stored as it is listed now, or the run says it is not.

An invoice listed with a total whose lines Microsoft does not serve (yet) is missing,
not stored empty; one whose lines add up to less (or more) than its total is missing
too, and read again, until they add up or finance accepts that exact difference; an
invoice whose listed total changed after its lines were stored (restated) is read again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.simulator.data import Scale
from sync.config import load_settings
from sync.jobs import SyncIncompleteError, SyncOptions, run_sync
from sync.runtime.runs import list_runs
from tests.test_sync import setup


def _stored_lines(engine: sa.Engine, invoice_id: str) -> int:
    with engine.connect() as c:
        query = sa.text("SELECT count(*) FROM invoice_line_items WHERE invoice_id = :i")
        return int(c.scalar(query, {"i": invoice_id}) or 0)


def _serve_anew(sim: Any) -> None:
    """Drop the export files the simulator wrote, so its next exports hold what it has now."""
    for blob in sim.blob_dir.glob("invoice-*"):
        blob.unlink()


def _document(view: Any, invoice_id: str) -> dict[str, Any]:
    (entry,) = [d for d in view.completeness["documents"] if d["invoice"] == invoice_id]
    return dict(entry)


# The v2 export (periods from February 2024) and v1 line items (earlier periods).
WORLDS = {
    "v2": {},
    "v1": {"anchor": date(2024, 3, 10), "scale": Scale(customers=6, invoices=3)},
}


@pytest.mark.parametrize("api", list(WORLDS))
def test_an_invoice_listed_with_a_total_but_served_without_lines_is_missing_until_it_has_them(
    start_simulator, db_url, tmp_path, monkeypatch, api: str
) -> None:
    sim = start_simulator(**WORLDS[api])
    target = sim.data.invoices[0]
    lines = sim.data.line_count(target)
    assert lines > 0
    assert target.total_minor != 0
    real_count = sim.data.line_count
    monkeypatch.setattr(sim.data, "line_count", lambda i: 0 if i.id == target.id else real_count(i))
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"{target.id}.*served none of its"):
        run_sync(settings, engine, sessions, SyncOptions())
    view = list_runs(sessions)[0]
    assert view.status == "partial"
    assert view.completeness is not None
    (missing,) = view.completeness["missing"]
    assert (missing["unit"], missing["key"]) == ("lineitems", f"{target.id}:one_time")
    total = sim.data._amount(target.total_minor, target.currency)
    assert f"a total of {total} {target.currency}" in missing["reason"]
    entry = _document(view, target.id)
    assert (entry["status"], entry["api"]) == ("missing", api)
    assert _stored_lines(engine, target.id) == 0

    # Microsoft serves the lines now: the next (incremental) run reads them.
    monkeypatch.setattr(sim.data, "line_count", real_count)
    _serve_anew(sim)
    run_sync(settings, engine, sessions, SyncOptions())
    assert _stored_lines(engine, target.id) == lines
    assert _document(list_runs(sessions)[0], target.id)["status"] == "stored"
    engine.dispose()


def test_an_invoice_with_no_charges_and_no_lines_is_complete(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    target = sim.data.invoices[0]
    target.base_lines, target.filler = [], 0
    sim.data._total(target)
    assert sim.data.line_count(target) == 0
    assert target.total_minor == 0
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    view = list_runs(sessions)[0]
    assert view.status == "succeeded"
    entry = _document(view, target.id)
    assert (entry["status"], entry["lines"], Decimal(entry["microsoft_total"])) == ("stored", 0, 0)
    engine.dispose()


def test_an_invoice_listed_with_a_new_total_after_its_lines_were_stored_is_read_again(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    target = sim.data.invoices[2]
    before = sim.data.line_count(target)
    assert _stored_lines(engine, target.id) == before

    # Microsoft restates the invoice: three more lines, a new total in the invoice list.
    target.filler += 3
    sim.data._total(target)
    _serve_anew(sim)
    exports_before = _exports_asked(sim)
    run_sync(settings, engine, sessions, SyncOptions())  # incremental
    assert _exports_asked(sim) == exports_before + 1  # this invoice's, and no other
    assert _stored_lines(engine, target.id) == before + 3
    entry = _document(list_runs(sessions)[0], target.id)
    assert entry["status"] == "stored"
    assert Decimal(entry["line_total"]) == Decimal(entry["microsoft_total"])
    listed = sim.data._amount(target.total_minor, target.currency)
    assert Decimal(entry["microsoft_total"]) == listed

    # Stored as listed now: the next run does not read it again.
    run_sync(settings, engine, sessions, SyncOptions())
    assert _exports_asked(sim) == exports_before + 1
    assert _document(list_runs(sessions)[0], target.id)["status"] == "stored earlier"
    engine.dispose()


def _exports_asked(sim: Any) -> int:
    return sum(
        1
        for method, path, _headers in sim.requests
        if method == "POST" and path.endswith("/reconciliation/billed/export")
    )


def _accept(settings: Any, sim: Any, invoice_id: str, difference: Decimal) -> Any:
    """The config with that difference of that invoice accepted by finance."""
    path = settings.source
    accepted = f'\n[billing.accepted_differences]\n"{invoice_id}" = "{difference}"\n'
    path.write_text(path.read_text() + accepted)
    return load_settings(path, {"PCSYNC_CLIENT_SECRET": sim.config.client_secret})


def _line_total(engine: sa.Engine, invoice_id: str) -> Decimal:
    with engine.connect() as c:
        query = sa.text("SELECT total_for_customer FROM invoice_line_items WHERE invoice_id = :i")
        return sum((Decimal(str(v)) for v in c.scalars(query, {"i": invoice_id})), Decimal(0))


@pytest.mark.parametrize("api", list(WORLDS))
def test_an_invoice_served_short_of_its_total_is_missing_and_read_again_until_it_adds_up(
    start_simulator, db_url, tmp_path, monkeypatch, api: str
) -> None:
    sim = start_simulator(**WORLDS[api])
    target = sim.data.invoices[0]
    lines = sim.data.line_count(target)
    assert lines > 1
    real_count = sim.data.line_count
    short = lambda i: lines - 1 if i.id == target.id else real_count(i)  # noqa: E731
    monkeypatch.setattr(sim.data, "line_count", short)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"{target.id}: its lines add up to"):
        run_sync(settings, engine, sessions, SyncOptions())
    view = list_runs(sessions)[0]
    assert view.status == "partial"
    assert view.completeness is not None
    (missing,) = view.completeness["missing"]
    assert (missing["unit"], missing["key"]) == ("lineitems", target.id)
    assert _document(view, target.id)["reason"] == missing["reason"]
    total = sim.data._amount(target.total_minor, target.currency)
    stored = _line_total(engine, target.id)
    assert stored != total
    assert f"Microsoft's total is {total}: {total - stored} short" in missing["reason"]
    assert _stored_lines(engine, target.id) == lines - 1  # kept as served, for reconcile

    # The next run reads it again (and still finds it short).
    _serve_anew(sim)
    with pytest.raises(SyncIncompleteError, match=target.id):
        run_sync(settings, engine, sessions, SyncOptions())
    entry = _document(list_runs(sessions)[0], target.id)
    assert entry["status"] == "missing"
    assert entry["api"] == api  # read again this run, not "stored earlier" (api None)

    # Microsoft serves every line now: the run has them all and succeeds.
    monkeypatch.setattr(sim.data, "line_count", real_count)
    _serve_anew(sim)
    run_sync(settings, engine, sessions, SyncOptions())
    assert list_runs(sessions)[0].status == "succeeded"
    assert _stored_lines(engine, target.id) == lines
    assert _line_total(engine, target.id) == total
    engine.dispose()


def test_a_difference_finance_accepted_ends_the_rereading_and_another_one_does_not(
    start_simulator, db_url, tmp_path, monkeypatch
) -> None:
    sim = start_simulator()
    target = next(i for i in sim.data.invoices if sim.data.line_count(i) > 3)
    lines = sim.data.line_count(target)
    real_count = sim.data.line_count
    served = {"lines": lines - 2}
    monkeypatch.setattr(
        sim.data, "line_count", lambda i: served["lines"] if i.id == target.id else real_count(i)
    )
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=target.id):
        run_sync(settings, engine, sessions, SyncOptions())
    difference = sim.data._amount(target.total_minor, target.currency) - _line_total(
        engine, target.id
    )
    settings = _accept(settings, sim, target.id, difference)

    run_id = run_sync(settings, engine, sessions, SyncOptions())  # read again, then accepted
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert view.status == "succeeded"
    assert view.counts["lineitems"]["differences_accepted"] == 1
    exports = _exports_asked(sim)
    run_sync(settings, engine, sessions, SyncOptions())
    assert _exports_asked(sim) == exports  # accepted and stored: not read again
    assert list_runs(sessions)[0].status == "succeeded"

    # Microsoft serves one more line: a new difference, not the one accepted.
    served["lines"] = lines - 1
    _serve_anew(sim)
    with pytest.raises(SyncIncompleteError, match=f"{target.id}: its lines add up to"):
        run_sync(settings, engine, sessions, SyncOptions(full=True))  # reads every document
    engine.dispose()


def _detail(provider: str) -> dict[str, Any]:
    return {
        "invoiceLineItemType": "billing_line_items",
        "billingProvider": provider,
        "attributes": {"objectType": "InvoiceDetail"},
    }


def test_an_invoice_of_several_providers_none_of_which_served_a_line_is_missing(
    start_simulator, db_url, tmp_path, monkeypatch
) -> None:
    sim = start_simulator()
    target = sim.data.invoices[0]
    assert target.total_minor != 0
    real_count = sim.data.line_count
    monkeypatch.setattr(sim.data, "line_count", lambda i: 0 if i.id == target.id else real_count(i))
    # Microsoft lists the invoice with legacy licence and usage line items.
    sim.data.malformed[f"invoice:{target.id}"] = {
        "invoiceDetails": [_detail("office"), _detail("azure")]
    }
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"{target.id}: its lines add up to 0"):
        run_sync(settings, engine, sessions, SyncOptions())
    view = list_runs(sessions)[0]
    assert view.completeness is not None
    assert [m["key"] for m in view.completeness["missing"]] == [target.id]
    engine.dispose()
