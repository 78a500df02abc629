"""Schema migrations: Alembic, shipped inside the package and run by ``pcsync init``.

Alembic is imported only to migrate. Everyday commands check the schema version
with one query against ``alembic_version`` and the ``HEAD`` constant below (a
test keeps it equal to the newest migration), which keeps a sync's memory lean.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from sync.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD",
    "alembic_config",
    "current_revision",
    "head_revision",
    "require_current",
    "upgrade",
]

HEAD = "0013"  # the newest migration under migrations/versions
_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of pcsync, read from the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest migration; return (revision before, revision after).

    Idempotent: on an up-to-date database it changes nothing.
    """
    from alembic import command

    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, head_revision()


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is empty or not at this version's schema."""
    current = current_revision(engine)
    if current != HEAD:
        state = "has no pcsync schema" if current is None else f"is at schema {current}"
        raise DatabaseError(
            f"database {engine.url.render_as_string(hide_password=True)} {state}, "
            f"this pcsync needs {HEAD}: run `pcsync init`"
        )
