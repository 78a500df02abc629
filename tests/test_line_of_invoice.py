"""A line is read only as a line of the invoice it is read for, in that invoice's currency.

Microsoft bills each invoice in one billing currency, which every line carries, and each
billed line names its invoice (``invoiceNumber``). A line in another currency (or in text
that is no currency), or naming another invoice, is unreadable: quarantined, its invoice
missing from the run, never stored as the invoice's charge.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.partner_center.errors import RecordError
from connectors.partner_center.export_lines import export_line_items
from connectors.partner_center.line_item import of_invoice, read_line
from connectors.partner_center.records import LineSource, Provider
from connectors.simulator.data import Dataset, Scale
from connectors.simulator.wire import dumps, pascal
from reconciliation.errors import DataError
from sync.jobs import SyncIncompleteError, SyncOptions, run_sync
from sync.runtime.runs import list_runs
from tests.test_sync import setup

# The field a spoiled line is sent with, and what its error names.
SPOILS: dict[str, tuple[dict[str, Any], str]] = {
    "another currency": ({"currency": "EUR"}, "'EUR' instead of its currency USD"),
    "no ISO currency": ({"currency": "XYZ"}, "'XYZ' instead of its currency USD"),
    "too long a currency": ({"currency": "USDX"}, "'USDX' instead of its currency USD"),
    "another invoice": ({"invoiceNumber": "OTHER"}, "names invoice 'G"),
}
# A key the documented schema lacks: the typed decoders decline the line, the general
# reader reads it.
UNDOCUMENTED = {"addedByMicrosoftLater": 1}


def _spoiled(sim: Any, invoice: Any, spoil: str, general: bool = False) -> str:
    fields, reason = SPOILS[spoil]
    if fields.get("invoiceNumber") == "OTHER":
        other = next(i for i in sim.data.invoices if i.id != invoice.id)
        fields = {"invoiceNumber": other.id}
    sim.data.malformed[f"line:{invoice.id}:1"] = {**fields, **(UNDOCUMENTED if general else {})}
    return reason


def _stored_invoices(engine: sa.Engine) -> set[str]:
    with engine.connect() as c:
        return set(c.scalars(sa.text("SELECT DISTINCT invoice_id FROM invoice_line_items")))


def _assert_only_set_aside(sim: Any, engine: sa.Engine, sessions: Any, invoice: Any) -> None:
    (run,) = list_runs(sessions)
    assert run.status == "partial"
    assert run.completeness is not None
    missing = [(m["unit"], m["key"].split(":")[0]) for m in run.completeness["missing"]]
    assert missing == [("lineitems", invoice.id)]
    assert _stored_invoices(engine) == {i.id for i in sim.data.invoices} - {invoice.id}
    with engine.connect() as c:
        quarantined = c.execute(sa.text("SELECT unit, unit_key, payload FROM quarantine")).all()
    ((unit, key, payload),) = quarantined
    assert (unit, key.split(":")[0]) == ("lineitems", invoice.id)
    assert payload  # the line as Microsoft sent it


@pytest.mark.parametrize("spoil", list(SPOILS))
def test_a_line_not_of_its_invoice_or_currency_is_set_aside_and_the_run_is_partial(
    start_simulator, db_url, tmp_path, spoil: str
) -> None:
    """On PostgreSQL too, where a currency of four letters once failed the whole sync."""
    sim = start_simulator()
    invoice = next(i for i in sim.data.invoices if i.currency == "USD")
    reason = _spoiled(sim, invoice, spoil)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"{invoice.id}.*{reason}"):
        run_sync(settings, engine, sessions, SyncOptions())
    _assert_only_set_aside(sim, engine, sessions, invoice)
    engine.dispose()


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("reader", ["typed", "general"])
def test_a_line_in_another_currency_is_set_aside_whichever_api_and_reader_reads_it(
    start_simulator, db_url, tmp_path, api: str, reader: str
) -> None:
    # January 2024 is served on v1 only, February on the v2 export only.
    sim = start_simulator(anchor=date(2024, 3, 10))
    period = date(2024, 1, 1) if api == "v1" else date(2024, 2, 1)
    invoice = next(i for i in sim.data.invoices if i.currency == "USD" and i.period_start == period)
    reason = _spoiled(sim, invoice, "another currency", general=reader == "general")
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"{invoice.id}.*{reason}"):
        run_sync(settings, engine, sessions, SyncOptions())
    _assert_only_set_aside(sim, engine, sessions, invoice)
    (run,) = list_runs(sessions)
    assert run.completeness is not None
    (document,) = [d for d in run.completeness["documents"] if d["invoice"] == invoice.id]
    assert document["api"] == api
    engine.dispose()


def test_an_unbilled_line_in_another_currency_is_set_aside(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    sim.data.malformed["unbilled:USD:1"] = {"currency": "EUR"}
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match="unbilled lines in 'EUR' instead of"):
        run_sync(settings, engine, sessions, SyncOptions())
    (run,) = list_runs(sessions)
    assert run.completeness is not None
    assert [(m["unit"], m["key"]) for m in run.completeness["missing"]] == [
        ("unbilled", "USD:current")
    ]
    assert _stored_invoices(engine) == {i.id for i in sim.data.invoices}
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM quarantine WHERE unit = 'unbilled'")) == 1
    engine.dispose()


# --- the connector's readers, without a database -------------------------------------------

DATA = Dataset(Scale(), date(2026, 11, 25))
INVOICE = next(i for i in DATA.invoices if i.currency == "USD")


def _blob(changes: dict[str, Any]) -> list[bytes]:
    """Two export lines of ``INVOICE``, the second with ``changes`` (PascalCase keys)."""
    rows = [pascal(DATA.line_json(INVOICE, n)) for n in range(2)]
    rows[1].update(changes)
    return [dumps(row) for row in rows]


@pytest.mark.parametrize("reader", ["typed", "general"])
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Currency": "EUR"}, "in 'EUR' instead of its currency USD"),
        ({"Currency": "eur"}, "in 'EUR' instead of its currency USD"),
        ({"Currency": "XYZ"}, "in 'XYZ' instead of its currency USD"),
        ({"Currency": "USDX"}, "in 'USDX' instead of its currency USD"),
        ({"InvoiceNumber": "G000099999"}, "names invoice 'G000099999' \\(invoiceNumber\\)"),
    ],
)
def test_an_export_line_not_of_its_invoice_is_a_record_error_naming_blob_and_line(
    changes: dict[str, Any], reason: str, reader: str
) -> None:
    lines = _blob({**changes, **({"AddedLater": 1} if reader == "general" else {})})
    read = export_line_items(lines, INVOICE.id, "blob b1", currency="USD")
    assert next(read).invoice_id == INVOICE.id  # the line before is read
    with pytest.raises(RecordError, match=f"blob b1: line 2: .*{reason}") as info:
        next(read)
    assert info.value.payload == lines[1].decode()


def test_a_whole_export_of_an_invoice_in_no_iso_currency_is_unreadable() -> None:
    lines = [dumps({**pascal(DATA.line_json(INVOICE, n)), "Currency": "XYZ"}) for n in range(2)]
    with pytest.raises(RecordError, match=r"line 1: .*'XYZ', not an ISO 4217 currency code"):
        list(export_line_items(lines, INVOICE.id, "blob b1", currency="XYZ"))


def test_the_lines_of_the_invoice_in_its_currency_are_read() -> None:
    lines = _blob({"Currency": "usd"})  # a code in another case is the same code
    read = list(export_line_items(lines, INVOICE.id, "blob b1", currency="usd"))
    assert [line.currency for line in read] == ["USD", "USD"]


def test_a_line_without_an_invoice_number_or_an_unbilled_one_is_its_invoices() -> None:
    """Legacy Office lines carry no invoiceNumber; unbilled lines an empty one."""
    office = {"customerId": "C1", "subtotal": 1, "tax": 0, "currency": "GBP"}
    line = read_line(office, "D1", Provider.OFFICE, LineSource.V1)
    assert of_invoice(line, "D1", "GBP") is line
    unbilled = {**DATA.line_json(INVOICE, 0), "invoiceNumber": ""}
    line = read_line(
        json.loads(dumps(unbilled), parse_float=Decimal), "unbilled", Provider.ONE_TIME, "v1"
    )
    assert of_invoice(line, "unbilled", "USD") is line
    with pytest.raises(DataError, match="line item of the unbilled lines in 'USD' instead of"):
        of_invoice(line, "unbilled", "EUR")
    with pytest.raises(DataError, match="line item of invoice D1 in 'USD' instead of"):
        of_invoice(
            read_line({**office, "currency": "usd"}, "D1", Provider.OFFICE, "v1"), "D1", "GBP"
        )
