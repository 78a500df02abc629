"""Schema and migrations on SQLite and PostgreSQL: from empty, idempotent, equal to models."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import StatementError

from sync.db.engine import make_engine, make_session_factory, ping
from sync.db.migrate import current_revision, head_revision, require_current, upgrade
from sync.db.models import Base, Invoice, Payment, PaymentImport
from sync.errors import DatabaseError


def test_migrations_create_every_table_from_empty(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision())
    tables = set(sa.inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_second_upgrade_is_a_no_op(migrated: sa.Engine) -> None:
    engine = migrated
    with engine.connect() as connection:
        schema_before = sorted(sa.inspect(connection).get_table_names())
    assert upgrade(engine) == (head_revision(), head_revision())
    with engine.connect() as connection:
        assert sorted(sa.inspect(connection).get_table_names()) == schema_before


def test_models_and_migrations_agree(migrated: sa.Engine) -> None:
    with migrated.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_require_current_names_the_fix(engine: sa.Engine) -> None:
    with pytest.raises(DatabaseError, match=r"has no pcsync schema.*run `pcsync init`"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)


def _import_row(session: sa.orm.Session) -> PaymentImport:
    batch = PaymentImport(
        file_name="p.csv",
        file_sha256="0" * 64,
        imported_at=datetime.now(UTC),
        rows_read=1,
        rows_imported=1,
        rows_unchanged=0,
        rows_rejected=0,
    )
    session.add(batch)
    session.flush()
    return batch


def test_money_round_trips_exactly(migrated: sa.Engine) -> None:
    sessions = make_session_factory(migrated)
    exact = [Decimal("0.1"), Decimal("1234567890123.456789"), Decimal("-0.000000001")]
    with sessions.begin() as session:
        batch = _import_row(session)
        for n, amount in enumerate(exact):
            session.add(
                Payment(
                    reference=f"r{n}",
                    customer_id="c",
                    payment_date=date(2026, 1, 1),
                    amount=amount,
                    currency="USD",
                    content_hash="h",
                    import_id=batch.id,
                    source_row=n + 2,
                )
            )
    with sessions() as session:
        stored = session.scalars(sa.select(Payment.amount).order_by(Payment.reference)).all()
    assert stored == exact
    assert all(isinstance(value, Decimal) for value in stored)


def test_money_refuses_float(migrated: sa.Engine) -> None:
    sessions = make_session_factory(migrated)
    with pytest.raises(StatementError, match="money must be Decimal"), sessions.begin() as session:
        session.add(_invoice(total=0.1))  # type: ignore[arg-type]


def _invoice(total: Decimal, at: datetime | None = None) -> Invoice:
    now = at or datetime.now(UTC)
    return Invoice(
        id="G000000001",
        invoice_date=date(2026, 10, 5),
        total_charges=total,
        paid_amount=Decimal(0),
        currency="EUR",
        raw={},
        content_hash="h",
        first_seen_at=now,
        synced_at=now,
    )


def test_times_come_back_aware_utc(migrated: sa.Engine) -> None:
    sessions = make_session_factory(migrated)
    berlin_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with sessions.begin() as session:
        session.add(_invoice(Decimal("10.00"), at=berlin_noon))
    with sessions() as session:
        stored = session.get_one(Invoice, "G000000001")
    assert stored.synced_at == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert stored.synced_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(migrated: sa.Engine) -> None:
    sessions = make_session_factory(migrated)
    with pytest.raises(StatementError, match="naive datetime"), sessions.begin() as session:
        session.add(_invoice(Decimal(1), at=datetime(2026, 1, 1)))


def test_unreachable_database_is_one_line() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseError) as info:
        ping(engine)
    engine.dispose()
    message = str(info.value)
    assert message.startswith("cannot open database postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "check [database] url" in message
    assert "\n" not in message


def test_head_constant_is_the_newest_migration() -> None:
    from sync.db.migrate import HEAD

    assert head_revision() == HEAD


def test_audit_log_is_append_only(migrated: sa.Engine) -> None:
    from sync import audit

    with make_session_factory(migrated).begin() as session:
        audit.record(session, "approved", "ops")
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), migrated.begin() as c:
            c.execute(sa.text(statement))
    with migrated.connect() as c:
        assert c.execute(sa.text("SELECT actor FROM audit_log")).scalars().all() == ["ops"]


def test_the_line_sums_migration_adds_up_lines_stored_before_it(engine: sa.Engine) -> None:
    from alembic import command

    from sync.db.migrate import alembic_config

    command.upgrade(alembic_config(engine), "0003")
    now = datetime.now(UTC).isoformat()
    values = [
        ("G1", "c1", "10.10", "12.02"),
        ("G1", "c1", "0.20", "0.24"),
        ("G1", None, "-1", "-1"),
    ]
    with engine.begin() as connection:
        for invoice, customer, subtotal, total in values:
            connection.execute(
                sa.text(
                    "INSERT INTO invoice_line_items (invoice_id, provider, source, content_hash,"
                    " occurrence, customer_id, subtotal, tax_total, total_for_customer, currency,"
                    " raw) VALUES (:i, 'one_time', 'v2', :h, 1, :c, :s, 0, :t, 'USD', '{}')"
                ),
                {"i": invoice, "h": subtotal + now, "c": customer, "s": subtotal, "t": total},
            )
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT customer_id, lines, subtotal, total_for_customer FROM invoice_line_sums"
                " ORDER BY customer_id"
            )
        ).all()
    assert [(c, n, Decimal(str(s)), Decimal(str(t))) for c, n, s, t in rows] == [
        ("", 1, Decimal("-1"), Decimal("-1")),
        ("c1", 2, Decimal("10.30"), Decimal("12.26")),
    ]


def test_the_sequential_index_migration_keeps_lines_and_goes_back(engine: sa.Engine) -> None:
    from alembic import command

    from sync.db.migrate import alembic_config

    config = alembic_config(engine)
    command.upgrade(config, "0004")
    insert = sa.text(
        "INSERT INTO invoice_line_items (invoice_id, provider, source, content_hash,"
        " occurrence, subtotal, tax_total, total_for_customer, currency, raw)"
        " VALUES ('G1', 'one_time', 'v2', :h, :n, '1', '0', '1', 'USD', '{}')"
    )
    stored = [("h", 1), ("h", 2), ("g", 1)]
    with engine.begin() as connection:
        for digest, number in stored:
            connection.execute(insert, {"h": digest, "n": number})
    query = sa.text("SELECT content_hash, occurrence FROM invoice_line_items ORDER BY id")
    upgrade(engine)
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(query)] == stored
        indexes = {i["name"] for i in sa.inspect(connection).get_indexes("invoice_line_items")}
    assert {"ix_invoice_line_items_scope", "ix_invoice_line_items_repeats"} <= indexes
    command.downgrade(config, "0004")
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(query)] == stored
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(insert, {"h": "h", "n": 2})  # unique again


def test_a_new_sqlite_database_has_pages_that_hold_several_lines(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    engine.dispose()
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")  # set once, kept on reopening
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA page_size")).scalar() == 65536
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_the_line_run_migration_drops_the_foreign_key_keeps_lines_and_goes_back(
    engine: sa.Engine,
) -> None:
    from alembic import command

    from sync.db.migrate import alembic_config

    config = alembic_config(engine)
    command.upgrade(config, "0005")
    line = sa.text(
        "INSERT INTO invoice_line_items (invoice_id, run_id, provider, source, content_hash,"
        " occurrence, subtotal, tax_total, total_for_customer, currency, raw)"
        " VALUES ('G1', :run, 'one_time', 'v2', 'h', 1, '1', '0', '1', 'USD', '{}')"
    )
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO runs (id, kind, "trigger", status, started_at, params, counts,'
                " requests, throttled) VALUES (7, 'sync', 'manual', 'ok', :at, '{}', '{}', 0, 0)"
            ),
            {"at": datetime.now(UTC).replace(tzinfo=None)},
        )
        connection.execute(line, {"run": 7})
    query = sa.text("SELECT invoice_id, run_id FROM invoice_line_items")

    def foreign_keys() -> list[Any]:
        with engine.connect() as connection:
            return sa.inspect(connection).get_foreign_keys("invoice_line_items")

    assert [fk["referred_table"] for fk in foreign_keys()] == ["runs"]
    upgrade(engine)
    assert foreign_keys() == []
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(query)] == [("G1", 7)]
    command.downgrade(config, "0005")
    assert [fk["referred_table"] for fk in foreign_keys()] == ["runs"]
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(query)] == [("G1", 7)]


def _flush_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "flush-behind"]


def test_flush_behind_flushes_the_database_and_its_log_until_the_commit_is_done(
    migrated: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync.db import flush
    from sync.db.models import Customer

    flushed: list[str] = []
    monkeypatch.setattr(flush, "FLUSH_EVERY", 0.01)
    monkeypatch.setattr(
        flush, "_sync", lambda fd: flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
    )
    database = str(migrated.url.database)
    with flush.flush_behind(migrated), migrated.begin() as connection:
        if migrated.dialect.name == "sqlite":
            assert len(_flush_threads()) == 1
        connection.execute(
            sa.insert(Customer),
            [
                {
                    "id": "c1",
                    "name": "A",
                    "raw": {},
                    "content_hash": "h",
                    "first_seen_at": datetime.now(UTC),
                    "synced_at": datetime.now(UTC),
                }
            ],
        )
        for _ in range(3000):  # the thread's pace is the machine's: wait for it, up to 30 s
            if migrated.dialect.name != "sqlite" or f"{database}-wal" in flushed:
                break
            time.sleep(0.01)
    assert _flush_threads() == []  # stopped once the block (and its commit) ended
    if migrated.dialect.name == "sqlite":
        assert {database, f"{database}-wal"} <= set(flushed)
    else:
        assert flushed == []  # PostgreSQL flushes its own files


def test_flush_behind_stops_when_the_block_fails(tmp_path: Path) -> None:
    from sync.db.flush import flush_behind

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(RuntimeError, match="boom"), flush_behind(engine):
        raise RuntimeError("boom")
    assert _flush_threads() == []
    engine.dispose()


def test_the_audit_chain_migration_chains_stored_entries_and_goes_back(engine: sa.Engine) -> None:
    from alembic import command

    from sync.audit import verify_chain
    from sync.db.migrate import alembic_config

    config = alembic_config(engine)
    command.upgrade(config, "0007")
    insert = sa.text(
        "INSERT INTO audit_log (at, actor, event, customer_id, details)"
        " VALUES (:at, :actor, 'approved', 'c1', :details)"
    )
    at = datetime(2026, 11, 3, 9, 30, 1, 250, tzinfo=UTC)
    stored = [("ana", '{"note": "late", "basis": {"USD": {"paid": "0"}}}'), ("bob", "{}")] * 3
    with engine.begin() as connection:
        for actor, details in stored:
            at_value = at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at
            connection.execute(insert, {"at": at_value, "actor": actor, "details": details})
    query = sa.text("SELECT actor, event, customer_id FROM audit_log ORDER BY id")
    upgrade(engine)
    with engine.connect() as connection:
        assert [r.actor for r in connection.execute(query)] == [a for a, _ in stored]
        chain = connection.execute(sa.text("SELECT seq FROM audit_log ORDER BY id")).scalars()
        assert list(chain) == [1, 2, 3, 4, 5, 6]
    check = verify_chain(make_session_factory(engine), None)
    assert (check.ok, check.count) == (True, 6), check.problem
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as c:
        c.execute(sa.text("UPDATE audit_log SET actor = 'mallory'"))

    command.downgrade(config, "0007")
    with engine.connect() as connection:
        assert [r.actor for r in connection.execute(query)] == [a for a, _ in stored]
        columns = {c["name"] for c in sa.inspect(connection).get_columns("audit_log")}
        assert not {"seq", "hash"} & columns
        assert not sa.inspect(connection).has_table("collection_holds")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as c:
        c.execute(sa.text("DELETE FROM audit_log"))


def _migration_0011() -> Any:
    import importlib.util

    path = Path(__file__).parents[1] / "sync/db/migrations/versions/0011_line_fields_as_columns.py"
    spec = importlib.util.spec_from_file_location("migration_0011", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_line_columns_migration_has_its_own_frozen_column_list() -> None:
    """0011 adds the columns documented when it was written, not whatever ``FIELDS`` says
    later: a field documented since needs a migration of its own (and the models, built from
    ``FIELDS``, then disagree with the migrations until it has one)."""
    from connectors.partner_center.line_fields import FIELDS, SHARED

    migration = _migration_0011()
    assert len(migration._COLUMNS) == 95
    assert [(f.key, f.column, f.kind.value) for f in FIELDS] == list(migration._COLUMNS), (
        "line_fields.FIELDS changed since 0011: add a migration for its columns, "
        "and compare with that migration's list here"
    )
    assert [(f.key, f.column) for f in SHARED] == list(migration._SHARED)


def test_the_line_columns_migration_keeps_an_unreadable_line_whole_and_gives_it_back(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from alembic import command

    from sync.db.migrate import alembic_config

    config = alembic_config(engine)
    command.upgrade(config, "0010")
    readable = (
        '{"customerId": "c1", "subscriptionId": "s1", "skuName": "E3", "subtotal": 1.10,'
        ' "totalForCustomer": 1.10, "currency": "USD", "someFieldAddedLater": "x"}'
    )
    unreadable = ['{"customerId": "c1", "subtotal": ', "[1, 2]"]
    insert = sa.text(
        "INSERT INTO invoice_line_items (invoice_id, provider, source, content_hash,"
        " occurrence, customer_id, subscription_id, subtotal, tax_total, total_for_customer,"
        " currency, raw) VALUES ('G1', 'one_time', 'v1', :h, 1, 'c1', 's1', :a, :z, :a, 'USD',"
        " :raw)"
    )
    with engine.begin() as connection:
        for number, raw in enumerate([readable, *unreadable]):
            connection.execute(insert, {"h": f"h{number}", "raw": raw, "a": "1.10", "z": "0"})
    with caplog.at_level("WARNING", logger="alembic.runtime.migration"):
        command.upgrade(config, "0011")
    assert "invoice_line_items: 2 line(s) whose stored JSON cannot be read" in caplog.text
    query = sa.text(
        "SELECT sku_name, CAST(extra AS TEXT) FROM invoice_line_items ORDER BY content_hash"
    )
    with engine.connect() as connection:
        rows = [(sku, json.loads(extra)) for sku, extra in connection.execute(query)]
    sku, extra = rows[0]
    assert sku == "E3"
    # (extra also marks shared fields pcsync read from another key as absent: None)
    assert {key: value for key, value in extra.items() if value is not None} == {
        "someFieldAddedLater": "x"
    }
    assert rows[1:] == [(None, {"pcsync:unreadable": raw}) for raw in unreadable]

    command.downgrade(config, "0010")
    with engine.connect() as connection:
        raws = connection.execute(
            sa.text("SELECT raw FROM invoice_line_items ORDER BY content_hash")
        ).scalars()
        back = list(raws)
    assert back[1:] == unreadable  # as they were stored, character for character
    assert json.loads(back[0], parse_float=Decimal) == json.loads(readable, parse_float=Decimal)


def test_a_migration_that_fails_leaves_the_database_as_it_was_and_can_be_retried(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite too: its driver commits before each DDL statement unless told not to, which
    left 0011's new columns behind a failed move (and a retry failing on them)."""
    from alembic import command

    import connectors.partner_center.line_item as line_item
    from sync.db.migrate import alembic_config

    config = alembic_config(engine)
    command.upgrade(config, "0010")
    insert = sa.text(
        "INSERT INTO invoice_line_items (invoice_id, provider, source, content_hash,"
        " occurrence, customer_id, subtotal, tax_total, total_for_customer, currency, raw)"
        " VALUES ('G1', 'one_time', 'v1', :h, 1, 'c1', :a, :a, :a, 'USD', :raw)"
    )
    raw = '{"customerId": "c1", "subtotal": 1, "totalForCustomer": 1, "currency": "USD"}'
    with engine.begin() as connection:
        for number in range(3):
            connection.execute(insert, {"h": f"h{number}", "a": "1", "raw": raw})

    def columns() -> set[str]:
        with engine.connect() as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns("invoice_line_items")}

    before = columns()
    real = line_item.read_line
    calls = []

    def fails_on_the_second_line(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the power went out")
        return real(*args, **kwargs)

    monkeypatch.setattr(line_item, "read_line", fails_on_the_second_line)
    with pytest.raises(RuntimeError, match="power"):
        command.upgrade(config, "0011")
    assert len(calls) == 2  # it failed inside the move, after the columns were added
    assert current_revision(engine) == "0010"
    assert columns() == before  # no column of 0011 left behind
    monkeypatch.setattr(line_item, "read_line", real)
    command.upgrade(config, "0011")
    assert current_revision(engine) == "0011"
    assert "partner_id" in columns()
    assert "raw" not in columns()


def test_the_delisted_migration_adds_a_nullable_time_keeps_customers_and_goes_back(
    engine: sa.Engine,
) -> None:
    from alembic import command

    from sync.db.migrate import alembic_config
    from sync.db.models import Customer

    config = alembic_config(engine)
    command.upgrade(config, "0011")
    at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    stored = at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO customers (id, name, raw, content_hash, first_seen_at, synced_at)"
                " VALUES ('c1', 'Contoso', '{}', 'h', :at, :at)"
            ),
            {"at": stored},
        )

    def columns() -> set[str]:
        with engine.connect() as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns("customers")}

    assert "delisted_at" not in columns()
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        customer = session.get_one(Customer, "c1")
        assert (customer.name, customer.delisted_at) == ("Contoso", None)  # taken as listed
        customer.delisted_at = at
    with sessions() as session:
        assert session.get_one(Customer, "c1").delisted_at == at  # aware UTC, as all times

    command.downgrade(config, "0011")
    assert "delisted_at" not in columns()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id, name FROM customers")).all() == [
            ("c1", "Contoso")
        ]
    upgrade(engine)
    assert "delisted_at" in columns()


def test_the_subscription_delisted_migration_adds_a_nullable_time_keeps_rows_and_goes_back(
    engine: sa.Engine,
) -> None:
    from alembic import command

    from sync.db.migrate import alembic_config
    from sync.db.models import Subscription

    config = alembic_config(engine)
    command.upgrade(config, "0012")
    at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    stored = at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO subscriptions (id, customer_id, quantity, status,"
                " suspension_reasons, raw, content_hash, first_seen_at, synced_at)"
                " VALUES ('s1', 'c1', 3, 'active', '[]', '{}', 'h', :at, :at)"
            ),
            {"at": stored},
        )

    def columns() -> set[str]:
        with engine.connect() as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns("subscriptions")}

    assert "delisted_at" not in columns()
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        sub = session.get_one(Subscription, "s1")
        assert (sub.status, sub.quantity, sub.delisted_at) == ("active", 3, None)  # listed
        sub.delisted_at = at
    with sessions() as session:
        assert session.get_one(Subscription, "s1").delisted_at == at  # aware UTC, as all times

    command.downgrade(config, "0012")
    assert "delisted_at" not in columns()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id, status FROM subscriptions")).all() == [
            ("s1", "active")
        ]
    upgrade(engine)
    assert "delisted_at" in columns()
