"""Shared fixtures: a fresh database per test on SQLite *and* PostgreSQL, config files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "PCSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_schema_url(schema: str) -> str:
    joiner = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a new SQLite file, or a new PostgreSQL schema dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pcsync.db'}"
        return
    schema = f"pcsync_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(schema)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


MINIMAL_CONFIG = """
[partner_center]
tenant_id = "partner.onmicrosoft.com"
client_id = "11111111-1111-1111-1111-111111111111"
"""


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config file (minimal Partner Center section plus ``extra``) and return its path."""

    def write(extra: str = "", *, db_url: str | None = None, base: str = MINIMAL_CONFIG) -> Path:
        text = base + extra
        if db_url is not None:
            text += f'\n[database]\nurl = "{db_url}"\n'
        path = tmp_path / "pcsync.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on the empty test database, disposed after the test."""
    from sync.db.engine import make_engine

    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated(engine: sa.Engine) -> sa.Engine:
    """The test database with pcsync's schema at head."""
    from sync.db.migrate import upgrade

    upgrade(engine)
    return engine
