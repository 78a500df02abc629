"""Shared fixtures: a fresh database per test on SQLite *and* PostgreSQL, config files.

States that cost a sync or a migration (the synced world, the empty schema at head) are
built once per test run and copied into each test's fresh database (tests/world.py).
"""

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


# Tests that mostly wait (daemons on a minute schedule, ~3 minutes together) run first,
# so that with pytest-xdist they overlap the others instead of ending the run alone.
WAIT_FIRST = ("tests/test_standby.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(WAIT_FIRST))  # a stable sort


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


SIM_ANCHOR = __import__("datetime").date(2026, 11, 25)
WORLD_SIMULATOR = {"anchor": SIM_ANCHOR, "export_seconds": 0, "page_cap": 5}


@pytest.fixture(scope="session", autouse=True)  # autouse: setup() in test_sync uses it too
def world_templates(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The states built once per test run (per backend), copied into each test's database."""
    import tests.world
    from tests.world import WorldTemplates

    templates = WorldTemplates(tmp_path_factory.mktemp("templates"), POSTGRES_URL)
    tests.world.current = templates  # for tests.test_sync.setup, a plain function
    return templates


def _build_world(url: str, folder: Path) -> sa.Engine:
    """Sync a simulator of the world's settings into ``url`` and import its sample payments."""
    from connectors.simulator.server import Simulator, SimulatorConfig
    from sync.jobs import SyncOptions, run_sync
    from sync.payments import import_payments
    from tests.test_sync import setup

    sim = Simulator(SimulatorConfig(**WORLD_SIMULATOR), folder / "simulator")  # type: ignore[arg-type]
    sim.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("REQUESTS_CA_BUNDLE", str(sim.tls.ca))
            patch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
            settings, engine, sessions = setup(sim, url, folder)
            run_sync(settings, engine, sessions, SyncOptions())
            payments = folder / "payments.csv"
            payments.write_text(sim.data.payments_csv())
            import_payments(settings, sessions, payments)
    finally:
        sim.stop()
    return engine  # type: ignore[no-any-return]


@pytest.fixture
def migrated(engine: sa.Engine, db_url: str, world_templates) -> sa.Engine:  # type: ignore[no-untyped-def]
    """The test database with pcsync's schema at head (migrated once, copied per test)."""
    world_templates.migrate(engine, db_url)
    return engine


@pytest.fixture
def start_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Start simulators over TLS (trusted through REQUESTS_CA_BUNDLE); stopped after the test.

    Pages are capped at 5 items whatever size the client asks for, as a service may
    do: a client that takes a short page for the last one misses data in every test.
    """
    from connectors.simulator.server import Simulator, SimulatorConfig

    started: list[Simulator] = []

    def start(**overrides: object) -> Simulator:
        settings = {**WORLD_SIMULATOR, **overrides}
        simulator = Simulator(SimulatorConfig(**settings), tmp_path / f"simulator-{len(started)}")  # type: ignore[arg-type]
        simulator.start()
        started.append(simulator)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(simulator.tls.ca))
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def connect_to(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A PartnerCenter client for a running simulator (real MSAL, real HTTPS)."""
    from connectors.partner_center import ClientOptions, Credentials, Endpoints, PartnerCenter

    def connect(simulator, secret: str | None = None, **options: object) -> PartnerCenter:  # type: ignore[no-untyped-def]
        base = simulator.base_url
        config = simulator.config
        return PartnerCenter.connect(
            Credentials(config.tenant_id, config.client_id, secret or config.client_secret),
            Endpoints(authority_host=base, api_base_url=base, graph_base_url=base),
            ClientOptions(
                **{  # type: ignore[arg-type]
                    "token_cache_path": tmp_path / "token-cache.json",
                    "backoff_base_seconds": 0.01,
                    "backoff_cap_seconds": 0.05,
                    "requests_per_minute": 600_000,
                    **options,
                }
            ),
        )

    return connect


@pytest.fixture
def world(start_simulator, db_url, tmp_path: Path, monkeypatch, world_templates):  # type: ignore[no-untyped-def]
    """A fresh simulator, its data synced with the sample payments, and a CLI bound to it.

    The synced database is a copy of one built once per test run (the simulator's data
    is deterministic); the simulator is the test's own, so its changes stay in the test.
    """
    from sync.config import load_settings
    from sync.db.engine import make_engine, make_session_factory
    from tests.test_sync import config_text
    from tests.world import World

    sim = start_simulator()
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    world_templates.copy_into("world", db_url, _build_world)
    (tmp_path / "payments.csv").write_text(sim.data.payments_csv())
    path = tmp_path / "pcsync.toml"
    path.write_text(config_text(sim, db_url, tmp_path))
    settings = load_settings(path, {"PCSYNC_CLIENT_SECRET": sim.config.client_secret})
    engine = make_engine(settings.database.url)
    try:
        yield World(sim, settings, engine, make_session_factory(engine), tmp_path)
    finally:
        engine.dispose()
