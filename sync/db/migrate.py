"""Schema migrations: Alembic, shipped inside the package and run by ``pcsync init``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from reconciliation.errors import DatabaseError

__all__ = ["alembic_config", "current_revision", "head_revision", "require_current", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at the shipped migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of pcsync."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest migration; return (revision before, revision after).

    Idempotent: on an up-to-date database it changes nothing.
    """
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, head_revision()


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is empty or not at this version's schema."""
    current = current_revision(engine)
    if current != head_revision():
        state = "has no pcsync schema" if current is None else f"is at schema {current}"
        raise DatabaseError(
            f"database {engine.url.render_as_string(hide_password=True)} {state}, "
            f"this pcsync needs {head_revision()}: run `pcsync init`"
        )
