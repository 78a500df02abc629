"""Alembic environment: runs on the engine pcsync hands over (never reads alembic.ini)."""

from __future__ import annotations

from alembic import context

from sync.db.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - pcsync always passes its engine
    raise RuntimeError("pcsync migrations run through `pcsync init`, not the alembic CLI")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for most ALTERs
        compare_type=True,
        user_module_prefix="sync.db.types.",
    )
    context.run_migrations()
