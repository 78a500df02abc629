"""The shared synced world: a copy is the database a fresh sync would give, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.db.models import AuditEntry, Run
from sync.jobs import SyncOptions, run_sync
from sync.payments import import_payments
from tests.test_sync import dump, setup
from tests.world import World


def _ids_next(world: World) -> tuple[int, int]:
    """The largest run id, and the id the database gives the next run."""
    with world.sessions.begin() as session:
        largest = session.scalar(sa.select(sa.func.max(Run.id)))
        run = Run(kind="sync", trigger="manual", status="failed", started_at=datetime.now(UTC))
        session.add(run)
        session.flush()
        return int(largest), run.id


def test_a_copied_world_is_what_a_fresh_sync_gives(
    world: World, start_simulator, db_url: str, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    sim = start_simulator()
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    fresh_url = (
        f"sqlite:///{tmp_path / 'fresh.db'}"
        if db_url.startswith("sqlite")
        else db_url.replace("pcsync_test_", "pcsync_fresh_")
    )
    if not db_url.startswith("sqlite"):
        schema = sa.engine.make_url(fresh_url).query["options"]
        assert isinstance(schema, str)
        name = schema.rpartition("=")[2]
        admin = sa.create_engine(db_url)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        settings, fresh, sessions = setup(sim, fresh_url, tmp_path, "fresh.toml")
        run_sync(settings, fresh, sessions, SyncOptions())
        payments = tmp_path / "fresh-payments.csv"
        payments.write_text(sim.data.payments_csv())
        import_payments(settings, sessions, payments)

        assert dump(world.engine) == dump(fresh)
        version = "SELECT version_num FROM alembic_version"
        with world.engine.connect() as copy, fresh.connect() as synced:
            assert copy.scalar(sa.text(version)) == synced.scalar(sa.text(version))
            assert copy.scalar(sa.text("SELECT count(*) FROM payments")) == 62
        # Sequences carry on after the copied rows, as in the synced database.
        largest, given = _ids_next(world)
        assert given == largest + 1
        # The audit log's append-only triggers came along.
        with world.sessions.begin() as session:
            session.add(AuditEntry(at=datetime.now(UTC), actor="a", event="b", seq=1, hash="h"))
        refused = pytest.raises(sa.exc.DatabaseError, match="append-only")
        with refused, world.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM audit_log"))
        fresh.dispose()
    finally:
        if not db_url.startswith("sqlite"):
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
            admin.dispose()
