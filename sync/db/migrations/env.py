"""Alembic environment: runs on the engine pcsync hands over (never reads alembic.ini)."""

from __future__ import annotations

from alembic import context

from sync.db.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - pcsync always passes its engine
    raise RuntimeError("pcsync migrations run through `pcsync init`, not the alembic CLI")

with engine.connect() as connection:
    # Python's sqlite3 commits before every DDL statement, so a failed migration would
    # leave its ALTERs behind at the old revision (a retry then fails: "duplicate column").
    # With the driver's own transaction handling off and a BEGIN of ours, each run is one
    # SQLite transaction, DDL included: it lands whole or not at all, as on PostgreSQL.
    raw = connection.connection.driver_connection if engine.dialect.name == "sqlite" else None
    saved = raw.isolation_level if raw is not None else None
    if raw is not None:
        raw.isolation_level = None
    try:
        with connection.begin():
            if raw is not None:
                connection.exec_driver_sql("BEGIN")
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=True,  # SQLite needs table rebuilds for most ALTERs
                compare_type=True,
                user_module_prefix="sync.db.types.",
            )
            context.run_migrations()
    finally:
        if raw is not None:
            raw.isolation_level = saved
