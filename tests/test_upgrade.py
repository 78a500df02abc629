"""Upgrading a filled database: `pcsync init` brings schema 0006 to head keeping every row.

Schema 0006 is the oldest schema a deployed pcsync may still have. The database is
created at 0006 with Alembic and filled with what pcsync really stores: a sync of
the simulator, imported payments, a reconciliation, a collections round with its
notices, an approval and their audit entries, produced by this version's code in
a database at head and carried over column by column into the 0006 schema (the
columns 0006 has; later ones are what the upgrade adds). Then `pcsync init`
upgrades it, as an admin would, and every row must still be there with the same
values — on SQLite, whose migrations rebuild tables to alter them, and on
PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from alembic import command

from connectors.partner_center.line_fields import BY_KEY, Kind
from connectors.partner_center.records import normalise_customer_id, parse_date
from sync.cli import main
from sync.collections.job import run_collections_round
from sync.db.engine import make_engine
from sync.db.migrate import alembic_config, current_revision, head_revision
from sync.db.models import Base
from sync.lines.rows import line_as_received
from sync.reconcile import run_reconciliation
from tests.test_sync import synced_with_payments

FROM = "0006"
AS_OF = date(2026, 11, 25)
# Tables that must come through with rows in them: a test that carried nothing over
# would prove nothing.
FILLED = {
    "customers",
    "subscriptions",
    "subscription_status_history",
    "invoices",
    "invoice_line_items",
    "invoice_line_sums",
    "unbilled_line_items",
    "sync_checkpoints",
    "payment_imports",
    "payments",
    "runs",
    "reconciliation_runs",
    "reconciliation_findings",
    "customer_balances",
    "collection_flags",
    "notices",
    "approvals",
    "audit_log",
}
# `pcsync init` records its own run; nothing else may gain or lose a row.
GROWS = {"runs"}


def _tables_at(engine: sa.Engine) -> dict[str, sa.Table]:
    """The tables of the database as it is, with the models' column types (exact values)."""
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        names = set(inspector.get_table_names()) - {"alembic_version"}
        columns = {name: [c["name"] for c in inspector.get_columns(name)] for name in names}
    metadata = sa.MetaData()
    tables = {}
    for name, present in columns.items():
        model = Base.metadata.tables[name]
        tables[name] = sa.Table(
            name,
            metadata,
            *(
                sa.Column(c, model.c[c].type, primary_key=model.c[c].primary_key)
                if c in model.c
                else sa.Column(c, sa.Text)  # a line's raw JSON, before 0010
                for c in present
            ),
        )
    return tables


def _rows(engine: sa.Engine, tables: dict[str, sa.Table]) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """Every row of every table, keyed by primary key."""
    found = {}
    with engine.connect() as connection:
        for name, table in tables.items():
            key = list(table.primary_key.columns)
            found[name] = {
                tuple(row[c.name] for c in key): tuple(row.values())
                for row in connection.execute(sa.select(table)).mappings()
            }
    return found


LINE_TABLES = ("invoice_line_items", "unbilled_line_items")


def _with_raw(row: dict[str, Any]) -> dict[str, Any]:
    """A line as 0006 stored it: its JSON text in ``raw``; every third with a field
    Microsoft added later and an amount sent as text that no column holds."""
    received = line_as_received(row)
    if row["id"] % 3 == 0:
        received["ResellerBillingRegion"] = {"code": "EU", "share": Decimal("0.25")}
        received["listPrice"] = ""
    text = msgspec.json.Encoder(decimal_format="number", order="sorted").encode(received)
    return {**row, "raw": text.decode()}


def _same_values(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a line read back from its columns holds every value its JSON held."""
    sent = {key.lower(): value for key, value in before.items() if value is not None}
    kept = {key.lower(): value for key, value in after.items() if value is not None}
    if sent.keys() != kept.keys():
        return False
    for key, value in sent.items():
        field = BY_KEY.get(key)
        stored = kept[key]
        if isinstance(stored, str) and stored and field is not None and field.kind is Kind.MONEY:
            stored = Decimal(stored)  # SQLite's exact text
        if field is None or stored == value:
            continue
        if field.kind is Kind.DAY:
            same = str(stored)[:10] == str(parse_date(value))
        elif field.key == "customerId":
            same = stored == normalise_customer_id(value)
        elif field.key in ("subscriptionId", "currency"):
            same = str(stored).lower() == str(value).lower()
        else:
            same = str(stored) == str(value)
        if not same:
            return False
    return True


def _fill_at_0006(source: sa.Engine, target: sa.Engine) -> None:
    """Copy what pcsync stored in ``source`` into ``target``'s 0006 tables."""
    tables = _tables_at(target)
    with source.connect() as reading, target.begin() as writing:
        for table in Base.metadata.sorted_tables:  # parents before children
            if table.name not in tables:
                continue
            narrow = tables[table.name]
            if table.name in LINE_TABLES:  # 0006 stored each line's JSON in raw
                rows = [
                    _with_raw(dict(row)) for row in reading.execute(sa.select(table)).mappings()
                ]
                rows = [{c.name: row[c.name] for c in narrow.columns} for row in rows]
                writing.execute(sa.insert(narrow), rows)
                continue
            columns = [table.c[c.name] for c in narrow.columns]
            rows = [dict(row) for row in reading.execute(sa.select(*columns)).mappings()]
            if rows:
                writing.execute(sa.insert(narrow), rows)
        if target.dialect.name == "postgresql":  # as if the rows had come through the sequences
            for name, narrow in tables.items():
                if "id" in narrow.c and isinstance(narrow.c.id.type, sa.Integer):
                    after_last = sa.select(sa.func.coalesce(sa.func.max(narrow.c.id), 0) + 1)
                    sequence = sa.func.pg_get_serial_sequence(name, "id")
                    writing.execute(
                        sa.select(sa.func.setval(sequence, after_last.scalar_subquery(), False))
                    )


@pytest.fixture
def filled_source(start_simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """A database at head filled the way pcsync fills one (SQLite, beside the test's own)."""
    sim = start_simulator()
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    folder = tmp_path / "source"
    folder.mkdir()
    settings, engine, sessions = synced_with_payments(
        sim, f"sqlite:///{folder / 'pcsync.db'}", folder
    )
    run_reconciliation(settings, sessions, AS_OF)
    plan = run_collections_round(settings, sessions, AS_OF, "upgrade test").plan
    suspend = sorted({flag.customer_id for flag in plan.flags if flag.action == "suspend"})
    assert suspend, "the simulator's world has customers at a suspend stage"
    engine.dispose()
    code = main(
        ["--config", str(settings.source), "collections", "approve", suspend[0], "--by", "Ana"]
    )
    assert code == 0
    return engine


def test_init_upgrades_a_filled_0006_database_keeping_every_row(
    filled_source: sa.Engine, db_url: str, write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    target = make_engine(db_url)
    try:
        command.upgrade(alembic_config(target), FROM)
        assert current_revision(target) == FROM
        _fill_at_0006(filled_source, target)
        tables = _tables_at(target)
        before = _rows(target, tables)
        empty = sorted(name for name in FILLED if not before.get(name))
        assert not empty, f"nothing carried into {empty}"
        target.dispose()

        config = write_config(db_url=db_url)
        assert main(["--config", str(config), "init"]) == 0
        out = capsys.readouterr().out
        assert f"schema {FROM} -> {head_revision()}" in out
        assert current_revision(target) == head_revision()

        at = {name: list(tables[name].c.keys()).index("raw") for name in LINE_TABLES}
        raws = {
            name: {key: row[at[name]] for key, row in before[name].items()} for name in LINE_TABLES
        }
        for name in LINE_TABLES:  # raw is gone: its values are in the columns and extra
            before[name] = {
                key: row[: at[name]] + row[at[name] + 1 :] for key, row in before[name].items()
            }
            tables[name] = sa.Table(
                name,
                sa.MetaData(),
                *(
                    sa.Column(c.name, c.type, primary_key=c.primary_key)
                    for c in tables[name].columns
                    if c.name != "raw"
                ),
            )
        after = _rows(target, tables)  # the 0006 columns, read again after the upgrade
        _assert_every_line_value_kept(target, raws)
        for name, rows in before.items():
            lost = [key for key in rows if key not in after[name]]
            assert not lost, f"{name}: {len(lost)} row(s) lost, e.g. {lost[:3]}"
            changed = [key for key, row in rows.items() if after[name][key] != row]
            assert not changed, (
                f"{name}: {len(changed)} row(s) changed, e.g. {before[name][changed[0]]}"
                f" -> {after[name][changed[0]]}"
            )
            if name not in GROWS:
                assert len(after[name]) == len(rows), f"{name} gained rows"
        assert len(after["runs"]) == len(before["runs"]) + 1  # the init run itself

        # The upgraded database works: pcsync reads its history.
        assert main(["--config", str(config), "runs", "--json", "--limit", "500"]) == 0
        assert capsys.readouterr().out.count('"kind": "sync"') == 1
    finally:
        target.dispose()
        filled_source.dispose()


def _assert_every_line_value_kept(engine: sa.Engine, raws: dict[str, dict[Any, str]]) -> None:
    """Every value of every line's JSON is in its columns or its extra, after the upgrade."""
    with engine.connect() as connection:
        for name, by_key in raws.items():
            table = Base.metadata.tables[name]
            extra = sa.cast(table.c.extra, sa.Text).label("extra")  # amounts as written
            query = sa.select(*(c for c in table.columns if c.name != "extra"), extra)
            rows = {row.id: dict(row) for row in connection.execute(query).mappings()}
            unknown = 0
            for (line_id,), raw in by_key.items():
                row = rows[line_id]
                row["extra"] = row["extra"] and json.loads(row["extra"], parse_float=Decimal)
                sent = json.loads(raw, parse_float=Decimal)
                assert _same_values(sent, line_as_received(row)), (name, line_id, sent, row)
                unknown += "ResellerBillingRegion" in (row["extra"] or {})
            assert unknown == len([key for (key,) in by_key if key % 3 == 0])
