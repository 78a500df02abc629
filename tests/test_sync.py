"""Sync engine against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import sqlalchemy as sa

from connectors.simulator.data import Scale
from connectors.simulator.faults import FaultPlan
from sync.config import Settings, load_settings
from sync.db.engine import make_engine, make_session_factory
from sync.db.migrate import upgrade
from sync.db.models import Base
from sync.errors import LockedError
from sync.jobs import SyncIncompleteError, SyncOptions, run_sync
from sync.lines import rebuild_line_sums
from sync.runtime.lock import run_lock
from sync.runtime.runs import list_runs
from tests.world import migrate

VOLATILE = {"id", "run_id", "synced_at", "first_seen_at", "observed_at"}
MIRROR = [
    "customers",
    "subscriptions",
    "invoices",
    "invoice_line_items",
    "invoice_line_sums",
    "unbilled_line_items",
]


def config_text(sim: Any, db_url: str, tmp_path: Path) -> str:
    base = sim.base_url
    return f"""
[partner_center]
tenant_id = "{sim.config.tenant_id}"
client_id = "{sim.config.client_id}"
authority_host = "{base}"
api_base_url = "{base}"
graph_base_url = "{base}"
token_cache_path = "{tmp_path / "token-cache.json"}"
requests_per_minute = 600000
max_retries = 8

[database]
url = "{db_url}"
"""


def setup(
    sim: Any, db_url: str, tmp_path: Path, name: str = "pcsync.toml"
) -> tuple[Settings, Any, Any]:
    path = tmp_path / name
    path.write_text(config_text(sim, db_url, tmp_path))
    settings = load_settings(path, {"PCSYNC_CLIENT_SECRET": sim.config.client_secret})
    engine = make_engine(settings.database.url)
    migrate(engine, settings.database.url)  # a copy of a migrated database when empty
    return settings, engine, make_session_factory(engine)


def _plain(value: object) -> str:
    # JSONB orders keys its own way; compare documents, not their spelling.
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return repr(value)


def synced_with_payments(sim: Any, db_url: str, tmp_path: Path) -> tuple[Settings, Any, Any]:
    """``setup`` plus a full sync and the simulator's sample payments imported."""
    from sync.payments import import_payments

    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    payments = tmp_path / "payments.csv"
    payments.write_text(sim.data.payments_csv())
    import_payments(settings, sessions, payments)
    return settings, engine, sessions


def dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every mirrored table's content without volatile columns, in a stable order."""
    result = {}
    with engine.connect() as connection:
        for name in MIRROR:
            table = Base.metadata.tables[name]
            columns = [c for c in table.columns if c.name not in VOLATILE]
            rows = connection.execute(sa.select(*columns)).all()
            result[name] = sorted(tuple(_plain(v) for v in row) for row in rows)
    return result


def test_full_sync_equals_the_simulators_data(start_simulator, db_url, tmp_path) -> None:
    """Every customer, subscription, invoice, amendment and line — with pages capped at 5."""
    sim = start_simulator()
    assert sim.config.page_cap == 5
    note = sim.data.issue_credit_note(sim.data.invoices[4].id, sim.data.invoices[5].invoice_date)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    with engine.connect() as c:
        documents = set(c.scalars(sa.text("SELECT id FROM invoices")))
        assert documents == {i.id for i in sim.data.invoices} | {note.id}
        customers = set(c.scalars(sa.text("SELECT id FROM customers")))
        assert customers == {cust["id"] for cust in sim.data.customers}
        subs = dict(c.execute(sa.text("SELECT id, status FROM subscriptions")).all())
        expected = {s["id"]: s["status"] for subs in sim.data.subscriptions.values() for s in subs}
        assert subs == expected
        for invoice in [*sim.data.invoices, note]:
            lines = (
                c.execute(
                    sa.text(
                        "SELECT total_for_customer FROM invoice_line_items WHERE invoice_id = :i"
                    ),
                    {"i": invoice.id},
                )
                .scalars()
                .all()
            )
            assert len(lines) == sim.data.line_count(invoice)
            total = sum((Decimal(str(v)) for v in lines), Decimal(0))
            assert total == Decimal(invoice.total_minor).scaleb(
                -2 if invoice.currency != "JPY" else 0
            )
        duplicates = c.execute(
            sa.text("SELECT count(*) FROM invoice_line_items WHERE occurrence = 2")
        ).scalar()
        assert duplicates == 1  # the line Microsoft billed twice is kept twice
        history = c.execute(sa.text("SELECT count(*) FROM subscription_status_history")).scalar()
        assert history == len(expected)
    # The sums kept with the lines are the sums of the lines.
    kept = dump(engine)["invoice_line_sums"]
    with sessions.begin() as session:
        assert rebuild_line_sums(session) == len(kept) > 0
    assert dump(engine)["invoice_line_sums"] == kept
    engine.dispose()


def test_second_sync_changes_nothing_and_asks_only_for_lists(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    before = dump(engine)
    mark = len(sim.requests)
    run_id = run_sync(settings, engine, sessions, SyncOptions())
    assert dump(engine) == before
    paths = [path for _, path, _ in sim.requests[mark:]]
    assert not any("/reports/partners/billing/reconciliation/billed" in p for p in paths)
    assert not any(p.startswith("/v1/invoices/G") for p in paths)
    counts = next(v for v in list_runs(sessions) if v.id == run_id).counts
    assert counts["lineitems"] == {"invoices_skipped": len(sim.data.invoices)}
    assert counts["customers"] == {"fetched": 12, "unchanged": 12}
    engine.dispose()


def test_faults_and_throttling_end_in_the_same_database(
    start_simulator, connect_to, db_url, tmp_path
) -> None:
    clean_sim = start_simulator()
    settings, clean_engine, clean_sessions = setup(
        clean_sim, f"sqlite:///{tmp_path / 'clean.db'}", tmp_path, "clean.toml"
    )
    run_sync(settings, clean_engine, clean_sessions, SyncOptions())
    faulty = start_simulator(faults=FaultPlan(rate=0.25, seed=5, slow_seconds=0.01), blob_lines=4)
    settings, engine, sessions = setup(faulty, db_url, tmp_path)
    client = connect_to(faulty, max_retries=10)
    run_sync(settings, engine, sessions, SyncOptions(), partner_center=client)
    assert dump(engine) == dump(clean_engine)
    assert client.http.stats.retries > 0
    clean_engine.dispose()
    engine.dispose()


def test_a_failed_export_keeps_the_rest_and_the_next_run_finishes(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    failing = sim.data.invoices[3].id
    sim.config.failing_exports = (failing,)
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with pytest.raises(SyncIncompleteError, match=f"1 unit\\(s\\) missing.*{failing}.*5000"):
        run_sync(settings, engine, sessions, SyncOptions())
    last = list_runs(sessions)[0]
    assert last.status == "partial"
    assert failing in (last.error or "")
    assert last.completeness is not None
    assert last.completeness["missing"] == [
        {"unit": "lineitems", "key": f"{failing}:one_time", "reason": ANY}
    ]
    missing = [d for d in last.completeness["documents"] if d["status"] == "missing"]
    assert [(d["invoice"], d["api"]) for d in missing] == [(failing, "v2")]
    with engine.connect() as c:
        stored = set(c.scalars(sa.text("SELECT DISTINCT invoice_id FROM invoice_line_items")))
    assert stored == {i.id for i in sim.data.invoices} - {failing}
    sim.config.failing_exports = ()
    run_sync(settings, engine, sessions, SyncOptions())
    with engine.connect() as c:
        stored = set(c.scalars(sa.text("SELECT DISTINCT invoice_id FROM invoice_line_items")))
    assert stored == {i.id for i in sim.data.invoices}
    engine.dispose()


def test_status_changes_are_kept_as_history(start_simulator, db_url, tmp_path) -> None:
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    customer = sim.data.customers[2]["id"]
    sub = sim.data.subscriptions[customer][0]
    sub["status"] = "suspended"
    run_sync(settings, engine, sessions, SyncOptions(only=("subscriptions",)))
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT old_status, new_status FROM subscription_status_history "
                "WHERE subscription_id = :s ORDER BY id"
            ),
            {"s": sub["id"]},
        ).all()
    assert [tuple(r) for r in rows] == [(None, "active"), ("active", "suspended")]
    engine.dispose()


def test_a_second_sync_fails_fast_while_one_runs(start_simulator, db_url, tmp_path) -> None:
    sim = start_simulator()
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    with run_lock(engine), pytest.raises(LockedError, match=r"another sync is running \(pid"):
        run_sync(settings, engine, sessions, SyncOptions())
    run_sync(settings, engine, sessions, SyncOptions(only=("customers",)))
    engine.dispose()


# Where each killed run dies (a failpoint, not a clock) and how many invoices are then
# complete: mid-invoice, written but not committed, just after a commit, mid-invoice again.
KILLS = (
    ("lines.batch:5", 0),
    ("invoice.before_commit:1", 0),
    ("invoice.committed:2", 2),
    ("lines.batch:20", 2),
)


def test_sync_killed_at_any_point_then_rerun_is_identical(
    start_simulator, db_url, tmp_path
) -> None:
    scale = Scale(customers=3, invoices=3, lines_per_invoice=15000)
    sim = start_simulator(scale=scale)
    clean_settings, clean_engine, clean_sessions = setup(
        sim, f"sqlite:///{tmp_path / 'clean.db'}", tmp_path, "clean.toml"
    )
    run_sync(clean_settings, clean_engine, clean_sessions, SyncOptions())
    settings, engine, _sessions = setup(sim, db_url, tmp_path)
    env = {**os.environ, "PCSYNC_CLIENT_SECRET": sim.config.client_secret}
    command = [sys.executable, "-m", "sync.cli", "--config", str(settings.source), "sync"]
    per_invoice = {i.id: sim.data.line_count(i) for i in sim.data.invoices}
    for point, complete in KILLS:
        killed = subprocess.run(
            command, env={**env, "PCSYNC_FAILPOINT": f"{point}=kill"}, capture_output=True
        )
        assert killed.returncode == -signal.SIGKILL, f"not killed at {point}"
        with engine.connect() as c:
            stored = dict(
                c.execute(
                    sa.text(
                        "SELECT invoice_id, count(*) FROM invoice_line_items GROUP BY invoice_id"
                    )
                ).all()
            )
        # Only whole invoices, and exactly as many as the kill point allows.
        assert all(count == per_invoice[invoice] for invoice, count in stored.items()), point
        assert len(stored) == complete, point
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    assert dump(engine) == dump(clean_engine)
    clean_engine.dispose()
    engine.dispose()


def _line(n: int) -> Any:
    """A billed v2 line of invoice G1: customer c, n USD."""
    from connectors.partner_center import Provider, read_line

    raw = {"customerId": "c", "subtotal": Decimal(n), "currency": "USD"}
    return read_line(raw, "G1", Provider.ONE_TIME, "v2")


def test_repeated_lines_are_numbered_across_batches(migrated, monkeypatch) -> None:
    from sync import lines as line_store
    from sync.lines import rows
    from sync.runtime.runs import recorded_run

    monkeypatch.setattr(rows, "LINE_BATCH", 3)
    sessions = make_session_factory(migrated)

    # 1 repeats within a batch and across batches; 2 repeats across batches.
    stream = [_line(1), _line(1), _line(2), _line(3), _line(1), _line(4), _line(2), _line(1)]
    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        assert line_store.replace_lines(session, "G1", "one_time", stream, run) == 8
    with migrated.connect() as c:
        rows = c.execute(
            sa.text("SELECT subtotal, occurrence FROM invoice_line_items ORDER BY id")
        ).all()
    assert [(Decimal(str(s)), o) for s, o in rows] == [
        (1, 1),
        (1, 2),
        (2, 1),
        (3, 1),
        (1, 3),
        (4, 1),
        (2, 2),
        (1, 4),
    ]


def test_stored_lines_keep_every_character_amount_and_date_exactly(migrated) -> None:
    """Tabs, newlines, backslashes and quotes survive the bulk path (COPY's text format
    on PostgreSQL escapes them); amounts keep their scale, dates their day."""
    from connectors.partner_center.export_lines import export_line_items
    from sync import lines as line_store
    from sync.lines import rows
    from sync.runtime.runs import recorded_run

    name = 'Contoso\t"Nord"\\Süd\nGmbH\\N'
    lines = [
        f'{{"CustomerId":"c","CustomerName":{json.dumps(name)},"Subtotal":{amount},'
        f'"TaxTotal":0,"TotalForCustomer":{amount},"Currency":"EUR",'
        '"ChargeStartDate":"2026-10-31T23:30:00-01:00"}'
        for amount in ("10.50", "-3.000", "1E+2", "0.0000001")
    ]
    items = list(
        export_line_items([line.encode() for line in lines], "G1", "blob 1", currency="EUR")
    )
    sessions = make_session_factory(migrated)
    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        line_store.replace_lines(session, "G1", "one_time", items, run)
    with migrated.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT extra, customer_name, subtotal, charge_start_date, content_hash"
                " FROM invoice_line_items ORDER BY id"
            )
        ).all()
    digests = [hashlib.sha256(line.encode()).hexdigest() for line in lines]
    assert [row.content_hash for row in rows] == digests  # of the text as received
    # Not exactly a day: the day in its column, the text as received in extra.
    assert [
        row.extra if isinstance(row.extra, dict) else json.loads(row.extra) for row in rows
    ] == [{"ChargeStartDate": "2026-10-31T23:30:00-01:00"}] * len(lines)
    assert {row.customer_name for row in rows} == {name}
    subtotals = [Decimal(str(row.subtotal)) for row in rows]
    assert [str(s) for s in subtotals[:2]] == ["10.50", "-3.000"]
    assert subtotals[2:] == [Decimal(100), Decimal("0.0000001")]
    assert {str(row.charge_start_date) for row in rows} == {"2026-11-01"}


def test_the_repeat_filter_never_misses_a_repeat_and_rarely_suspects_a_first() -> None:
    import hashlib

    from sync.lines.repeats import SeenFilter

    seen = SeenFilter()
    digests = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(200_000)]
    suspected = seen.add_all(digests)
    assert len(suspected) < 20  # by chance only: every digest is new
    again = digests[::1000]
    assert seen.add_all(again) == set(again)  # a repeat is always suspected
    assert seen.add_all(["f" * 64, "f" * 64]) == {"f" * 64}  # also within one call


def test_a_batch_the_database_refuses_fails_the_invoice_and_keeps_its_lines(
    migrated, monkeypatch
) -> None:
    """A batch is written in a thread of its own; its error still reaches the sync."""
    from sync import lines as line_store
    from sync.lines import rows
    from sync.runtime.runs import recorded_run

    monkeypatch.setattr(rows, "LINE_BATCH", 2)
    sessions = make_session_factory(migrated)

    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        line_store.replace_lines(session, "G1", "one_time", [_line(1), _line(2)], run)
    # The database itself refuses a line with subtotal 13 (the third batch of four).
    with migrated.begin() as connection:
        if migrated.dialect.name == "sqlite":
            connection.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON invoice_line_items"
                    " WHEN NEW.subtotal = '13' BEGIN SELECT RAISE(ABORT, 'refused 13'); END"
                )
            )
        else:
            connection.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                    " IF NEW.subtotal = 13 THEN RAISE EXCEPTION 'refused 13'; END IF;"
                    " RETURN NEW; END $$"
                )
            )
            connection.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON invoice_line_items"
                    " FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    stream = [_line(n) for n in (10, 11, 12, 12, 13, 14, 15, 16)]
    with (
        pytest.raises(Exception, match="refused 13"),  # the driver's own error
        recorded_run(sessions, "test", "manual") as run,
        sessions.begin() as session,
    ):
        line_store.replace_lines(session, "G1", "one_time", stream, run)
    with migrated.connect() as c:
        kept = c.execute(sa.text("SELECT subtotal FROM invoice_line_items ORDER BY id")).all()
        sums = c.execute(sa.text("SELECT lines FROM invoice_line_sums")).scalars().all()
    assert [Decimal(str(s)) for (s,) in kept] == [1, 2]  # the invoice as it was, whole
    assert sums == [2]


def test_an_error_while_reading_an_invoice_ends_its_write_and_keeps_its_lines(
    migrated, monkeypatch
) -> None:
    """Batches already handed to the writer (a COPY on PostgreSQL) are discarded whole."""
    from connectors.partner_center.errors import BadResponseError
    from sync import lines as line_store
    from sync.lines import rows
    from sync.runtime.runs import recorded_run

    monkeypatch.setattr(rows, "LINE_BATCH", 2)
    sessions = make_session_factory(migrated)

    def truncated() -> Any:
        yield from (_line(n) for n in (10, 11, 12, 13, 14))  # two batches written, one pending
        raise BadResponseError("blob 1: truncated")

    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        line_store.replace_lines(session, "G1", "one_time", [_line(1), _line(2)], run)
    with (
        pytest.raises(BadResponseError, match="truncated"),
        recorded_run(sessions, "test", "manual") as run,
        sessions.begin() as session,
    ):
        line_store.replace_lines(session, "G1", "one_time", truncated(), run)
    with migrated.connect() as c:
        kept = c.execute(sa.text("SELECT subtotal FROM invoice_line_items ORDER BY id")).all()
    assert [Decimal(str(s)) for (s,) in kept] == [1, 2]
    # The connection is fit for the next invoice.
    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        assert line_store.replace_lines(session, "G2", "one_time", [_line(3)], run) == 1


def test_sqlite_batches_span_statements_and_keep_amounts_as_exact_text(
    tmp_path, monkeypatch
) -> None:
    """A batch larger than one statement's parameters takes several, in order."""
    import sqlite3

    from connectors.partner_center import Provider, read_line
    from sync import lines as line_store
    from sync.lines import rows
    from sync.runtime.runs import recorded_run

    engine = make_engine(f"sqlite:///{tmp_path / 'lines.db'}")
    upgrade(engine)

    @sa.event.listens_for(engine, "connect")
    def few_parameters(dbapi_connection: Any, _record: Any) -> None:
        # Room for two rows a statement: a batch of five takes three statements.
        dbapi_connection.setlimit(
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2 * len(rows.LINE_COLUMNS) + 10
        )

    engine.dispose()  # connections opened from now on have the low limit
    monkeypatch.setattr(rows, "LINE_BATCH", 5)
    sessions = make_session_factory(engine)
    amounts = ["10.50", "0.10", "-3.000", "7", "1E+2", "2.5", "99.99", "0.01", "5", "6", "8.80"]
    days = [None, "2026-10-01", "2026-10-02"]
    lines = [
        read_line(
            {
                "customerId": "c",
                "subtotal": Decimal(a),
                "currency": "USD",
                "chargeStartDate": days[n % 3] and f"{days[n % 3]}T00:00:00Z",
            },
            "G1",
            Provider.ONE_TIME,
            "v2",
        )
        for n, a in enumerate(amounts)
    ]
    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        assert line_store.replace_lines(session, "G1", "one_time", lines, run) == len(amounts)
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT subtotal, typeof(subtotal), charge_start_date, invoice_id, run_id,"
                " occurrence FROM invoice_line_items ORDER BY id"
            )
        ).all()
    assert [(s, t) for s, t, *_ in rows] == [(a, "text") for a in amounts]
    assert [d for _, _, d, *_ in rows] == [days[n % 3] for n in range(len(amounts))]
    # The batch's constants (invoice, run, first occurrence) reach every row of every statement.
    assert {tuple(row[3:]) for row in rows} == {("G1", run.run_id, 1)}
    engine.dispose()


def _mirror() -> SyncOptions:
    """A sync of the customer listing and the subscriptions only."""
    return SyncOptions(only=("customers", "subscriptions"))


def _mirrored(sim: Any, db_url: str, tmp_path: Path) -> tuple[Settings, Any, Any]:
    """``setup``, then the customers and their subscriptions synced once."""
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, _mirror())
    return settings, engine, sessions


def _asked_for_subscriptions(sim: Any, since: int) -> set[str]:
    """The customers whose subscriptions were asked for since request ``since``."""
    return {
        path.split("/customers/")[1].split("/")[0]
        for _method, path, _headers in sim.requests[since:]
        if "/customers/" in path and path.split("?")[0].endswith("/subscriptions")
    }


def _stored_subscriptions(engine: sa.Engine, customer: str) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [
            tuple(row)
            for row in c.execute(
                sa.text(
                    "SELECT id, quantity, status, content_hash, synced_at FROM subscriptions"
                    " WHERE customer_id = :c ORDER BY id"
                ),
                {"c": customer},
            )
        ]


def _delisted_at(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as c:
        return dict(
            c.execute(
                sa.text("SELECT id, delisted_at FROM customers WHERE delisted_at IS NOT NULL")
            ).all()
        )


def test_a_customer_microsoft_no_longer_lists_is_delisted_and_not_asked(
    start_simulator, db_url, tmp_path
) -> None:
    """The partner relationship ended: the customer is marked delisted, its subscriptions
    are not asked for and stay as stored, and the run succeeds."""
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    gone = sim.data.customers[5]["id"]
    before = _stored_subscriptions(engine, gone)
    assert before
    sim.data.unlisted.add(gone)  # left out of Partner Center's customer list
    sim.data.subscriptions[gone][0]["quantity"] += 5  # not ours to see any more
    other = sim.data.customers[6]["id"]
    sim.data.subscriptions[other][0]["quantity"] += 3  # a change the next sync must see
    mark = len(sim.requests)
    run_id = run_sync(settings, engine, sessions, _mirror())
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert view.status == "succeeded"
    assert view.counts["customers"]["delisted"] == 1
    assert view.counts["subscriptions"]["customers_skipped"] == 1
    listed = {c["id"] for c in sim.data.customers} - {gone}
    assert _asked_for_subscriptions(sim, mark) == listed  # every listed one, not the gone one
    assert _stored_subscriptions(engine, gone) == before  # kept untouched
    assert set(_delisted_at(engine)) == {gone}
    with engine.connect() as c:
        quantity = c.scalar(
            sa.text("SELECT quantity FROM subscriptions WHERE id = :s"),
            {"s": sim.data.subscriptions[other][0]["id"]},
        )
    assert quantity == sim.data.subscriptions[other][0]["quantity"]  # the others were synced

    since = _delisted_at(engine)[gone]
    run_id = run_sync(settings, engine, sessions, _mirror())  # still left out: delisted since then
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert "delisted" not in view.counts["customers"]
    assert _delisted_at(engine) == {gone: since}
    engine.dispose()


def test_a_listed_customer_whose_subscriptions_answer_404_makes_the_run_partial(
    start_simulator, db_url, tmp_path, capsys, monkeypatch
) -> None:
    """Microsoft still lists the customer: its subscriptions are missing, not gone."""
    from sync.cli import main

    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    lost = sim.data.customers[5]["id"]
    before = _stored_subscriptions(engine, lost)
    del sim.data.subscriptions[lost]  # listed, but its subscriptions now answer 404
    options = SyncOptions(only=("customers", "subscriptions"))
    with pytest.raises(SyncIncompleteError, match=f"subscriptions {lost}: Microsoft lists"):
        run_sync(settings, engine, sessions, options)
    view = list_runs(sessions)[0]
    assert view.status == "partial"
    assert view.completeness is not None
    [missing] = view.completeness["missing"]
    assert (missing["unit"], missing["key"]) == ("subscriptions", lost)
    assert "answered 404 for its subscriptions" in missing["reason"]
    assert "stale" in missing["reason"]
    assert _delisted_at(engine) == {}  # listed: not delisted
    assert _stored_subscriptions(engine, lost) == before  # what was stored is kept

    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    capsys.readouterr()
    assert main(["--config", str(settings.source), "sync", "--only", "subscriptions"]) == 1
    err = capsys.readouterr().err.splitlines()
    [error] = [line for line in err if line.startswith("pcsync: error")]  # one line
    assert lost in error
    assert "answered 404 for its subscriptions" in error
    engine.dispose()


def test_a_delisted_customer_listed_again_is_relisted_and_asked_again(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    back = sim.data.customers[5]["id"]
    sim.data.unlisted.add(back)
    run_sync(settings, engine, sessions, _mirror())
    assert set(_delisted_at(engine)) == {back}
    sim.data.unlisted.discard(back)  # a new relationship: Microsoft lists it again
    sim.data.subscriptions[back][0]["quantity"] += 2
    mark = len(sim.requests)
    run_id = run_sync(settings, engine, sessions, _mirror())
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert view.status == "succeeded"
    assert view.counts["customers"]["relisted"] == 1
    assert "customers_skipped" not in view.counts["subscriptions"]
    assert back in _asked_for_subscriptions(sim, mark)
    assert _delisted_at(engine) == {}
    first = sim.data.subscriptions[back][0]
    quantities = {row[0]: row[1] for row in _stored_subscriptions(engine, back)}
    assert quantities[first["id"]] == first["quantity"]  # its change was read
    engine.dispose()


def test_a_listing_with_an_unreadable_customer_delists_nobody(
    start_simulator, db_url, tmp_path
) -> None:
    """The unreadable record may be any stored customer: none is taken as gone."""
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    gone = sim.data.customers[5]["id"]
    sim.data.unlisted.add(gone)
    spoilt = sim.data.customers[2]["id"]
    sim.data.malformed[f"customer:{spoilt}"] = {"id": None, "companyProfile": {"domain": "x"}}
    with pytest.raises(SyncIncompleteError, match="a customer record was unreadable"):
        run_sync(settings, engine, sessions, _mirror())
    assert _delisted_at(engine) == {}
    del sim.data.malformed[f"customer:{spoilt}"]  # read again: the listing is complete
    run_sync(settings, engine, sessions, _mirror())
    assert set(_delisted_at(engine)) == {gone}
    engine.dispose()


def test_an_empty_customer_listing_delists_nobody_and_the_run_is_partial(
    start_simulator, db_url, tmp_path
) -> None:
    """Every relationship ending at once is far likelier a sign-in to the wrong tenant."""
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    everyone = {str(c["id"]) for c in sim.data.customers}
    sim.data.unlisted.update(everyone)
    with pytest.raises(SyncIncompleteError, match=f"listed no customer where {len(everyone)}"):
        run_sync(settings, engine, sessions, _mirror())
    assert _delisted_at(engine) == {}
    sim.data.unlisted.clear()
    run_sync(settings, engine, sessions, _mirror())
    assert list_runs(sessions)[0].status == "succeeded"
    engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # advisory locks are its own
def test_the_postgresql_lock_is_per_schema(db_url: str, migrated: sa.Engine) -> None:
    """Two pcsync databases in one PostgreSQL database (two schemas) do not block each other."""
    from tests.conftest import POSTGRES_URL

    here, again, elsewhere = migrated, make_engine(db_url), make_engine(POSTGRES_URL)
    try:
        with run_lock(here):
            with run_lock(elsewhere):  # the public schema: another pcsync database
                pass
            with pytest.raises(LockedError, match="another sync is running"), run_lock(again):
                pass
    finally:
        for engine in (again, elsewhere):
            engine.dispose()


def test_a_partner_with_periods_on_both_sides_of_february_2024_syncs_each_from_its_api(
    start_simulator, db_url, tmp_path
) -> None:
    """December 2023 and January 2024 from v1 (seek pages capped at 5), February from v2."""
    from datetime import date

    sim = start_simulator(anchor=date(2024, 3, 10), scale=Scale(customers=6, invoices=3))
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    run_sync(settings, engine, sessions, SyncOptions())
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT i.billing_period_start, l.source, count(*) FROM invoice_line_items l "
                "JOIN invoices i ON i.id = l.invoice_id "
                "GROUP BY i.billing_period_start, l.source"
            )
        ).all()
    sources = {str(start)[:7]: source for start, source, _ in rows}
    assert sources == {"2023-12": "v1", "2024-01": "v1", "2024-02": "v2"}
    stored = sum(count for *_, count in rows)
    assert stored == sum(sim.data.line_count(i) for i in sim.data.invoices)
    for invoice in sim.data.invoices:
        pages = [p for _, p, _ in sim.requests if f"/{invoice.id}/lineitems" in p]
        v1 = invoice.period_start < date(2024, 2, 1)
        assert len(pages) == (-(-sim.data.line_count(invoice) // 5) if v1 else 0)  # 5 a page
    engine.dispose()
