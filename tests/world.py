"""A synced simulator world: built once per test run, copied per test, driven by the CLI.

Syncing the simulator into a fresh database for every test cost more than the tests
themselves. The simulator's data is deterministic (seed, scale, anchor date), so the
synced database is the same every time: :class:`WorldTemplates` builds it once per
backend and copies it into each test's empty database — a file copy on SQLite, a
``pg_dump`` of the template schema replayed under the test's schema on PostgreSQL
(tables, sequences at their values, triggers, the alembic version). Each test still
gets its own fresh simulator, so what a test changes at "Microsoft" stays its own.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from sync.cli import main
from sync.collections import plan_collections
from sync.config import Settings, load_settings
from sync.db.engine import make_engine
from sync.db.migrate import upgrade

AS_OF = "2026-11-25"
_SCHEMA = "pcsync_world_template_"  # + a random suffix; replaced by the test's schema


def _schema_of(url: str) -> str:
    """The schema a test URL's ``search_path`` option names (see conftest's ``db_url``)."""
    options = sa.engine.make_url(url).query["options"]
    assert isinstance(options, str)
    return options.rpartition("search_path=")[2]


def _is_empty(url: str) -> bool:
    """True for a SQLite file not yet created, or a PostgreSQL schema with no tables."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database or ""
        return bool(database) and not Path(database).exists()
    probe = sa.create_engine(url, poolclass=NullPool)
    try:
        with probe.connect() as connection:
            tables = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM information_schema.tables"
                    " WHERE table_schema = current_schema()"
                )
            )
    finally:
        probe.dispose()
    return tables == 0


class WorldTemplates:
    """The synced world (and the empty schema at head), built once per backend, copied per test.

    ``build(sim, db_url, folder)`` fills ``db_url``'s empty database; it runs once per
    backend and kind the first time a test asks, on a simulator started for the purpose.
    """

    def __init__(self, folder: Path, postgres_url: str) -> None:
        self.folder, self.postgres_url = folder, postgres_url
        self._sqlite: dict[str, Path] = {}
        self._postgres: dict[str, str] = {}  # kind -> the schema's dump, schema name as _SCHEMA

    def copy_into(self, kind: str, db_url: str, build: Any) -> None:
        """Give ``db_url``'s empty database (a new SQLite file or schema) the ``kind`` state."""
        if db_url.startswith("sqlite"):
            target = Path(sa.engine.make_url(db_url).database or "")
            if kind not in self._sqlite:
                self._sqlite[kind] = self._build_sqlite(kind, build)
            shutil.copy(self._sqlite[kind], target)
            return
        if kind not in self._postgres:
            self._postgres[kind] = self._build_postgres(kind, build)
        script = self._postgres[kind].replace(_SCHEMA, _schema_of(db_url))
        admin = sa.create_engine(self.postgres_url, poolclass=NullPool)
        try:
            raw = admin.raw_connection()
            try:
                raw.cursor().execute(script)  # no parameters: one script, many statements
                raw.commit()
            finally:
                raw.close()
        finally:
            admin.dispose()

    def _build_sqlite(self, kind: str, build: Any) -> Path:
        folder = self.folder / f"sqlite-{kind}"
        folder.mkdir()
        path = folder / "template.db"
        engine = build(f"sqlite:///{path}", folder)
        with engine.connect() as connection:  # everything in the main file: copy one file
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        assert not path.with_name("template.db-wal").exists() or not os.path.getsize(
            path.with_name("template.db-wal")
        )
        return path

    def _build_postgres(self, kind: str, build: Any) -> str:
        folder = self.folder / f"postgresql-{kind}"
        folder.mkdir()
        schema = f"{_SCHEMA}{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.postgres_url, poolclass=NullPool)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            joiner = "&" if "?" in self.postgres_url else "?"
            engine = build(f"{self.postgres_url}{joiner}options=-csearch_path%3D{schema}", folder)
            engine.dispose()
            return self._dump(schema).replace(schema, _SCHEMA)
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    def _dump(self, schema: str) -> str:
        """The schema as SQL: structure, rows as INSERTs, sequences' values, then triggers."""
        url = sa.engine.make_url(self.postgres_url)
        env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
        argv = ["pg_dump", "--schema", schema, "--no-owner", "--no-privileges", "--inserts"]
        argv += ["--rows-per-insert", "1000", "-h", url.host or "127.0.0.1"]
        argv += ["-p", str(url.port or 5432), "-U", url.username or "postgres"]
        done = subprocess.run([*argv, url.database or ""], env=env, capture_output=True)
        if done.returncode != 0:
            pytest.fail(f"pg_dump of the world template failed: {done.stderr.decode()}")
        lines = done.stdout.decode().splitlines()
        # psql's meta-commands (\restrict) are not SQL; the test's schema exists already.
        kept = [x for x in lines if not x.startswith("\\") and not x.startswith("CREATE SCHEMA")]
        return "\n".join(kept)

    def migrate(self, engine: sa.Engine, url: str) -> None:
        """``upgrade(engine)``: by a copy of the migrated template if the database is empty."""
        if not _is_empty(url):
            upgrade(engine)
            return
        engine.dispose()  # nothing may hold the file the copy creates
        self.copy_into("migrated", url, _build_migrated)


def _build_migrated(url: str, _folder: Path) -> sa.Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


# The test run's templates (conftest registers them), for helpers that are not fixtures.
current: WorldTemplates | None = None


def migrate(engine: sa.Engine, url: str) -> None:
    """Bring ``url``'s database to head: a copy of the run's migrated template when empty."""
    if current is None:
        upgrade(engine)
    else:
        current.migrate(engine, url)


class World:
    def __init__(self, sim: Any, settings: Settings, engine: Any, sessions: Any, tmp: Path) -> None:
        self.sim, self.settings, self.engine, self.sessions, self.tmp = (
            sim,
            settings,
            engine,
            sessions,
            tmp,
        )
        self.never = sim.data.customers[4]["id"]  # never pays: at the suspend stage

    def configure(self, extra: str) -> None:
        """Append to the config file (the CLI reads it again on every call)."""
        assert self.settings.source is not None
        with self.settings.source.open("a") as f:
            f.write("\n" + extra + "\n")
        self.settings = load_settings(
            self.settings.source, {"PCSYNC_CLIENT_SECRET": self.sim.config.client_secret}
        )

    def cli(self, *args: str) -> int:
        return main(["--config", str(self.settings.source), *args])

    def statuses(self) -> dict[str, str]:
        """Every subscription's status as Microsoft (the simulator) has it."""
        return {
            sub["id"]: sub["status"]
            for subs in self.sim.data.subscriptions.values()
            for sub in subs
        }

    def subs_of(self, customer: str) -> list[dict[str, Any]]:
        return self.sim.data.subscriptions[customer]  # type: ignore[no-any-return]

    def patches(self) -> int:
        return sum(1 for method, *_ in self.sim.requests if method == "PATCH")

    def suspend_customers(self) -> list[str]:
        plan = plan_collections(self.settings, self.sessions, date(2026, 11, 25), store=False)
        return sorted({f.customer_id for f in plan.flags if f.action == "suspend"})

    def audit(self, customer: str | None = None) -> list[dict[str, Any]]:
        args = ["audit", "--json"] + (["--customer", customer] if customer else [])
        return self._json(*args)["entries"]  # type: ignore[no-any-return]

    def _json(self, *args: str) -> Any:
        out = io.StringIO()
        with redirect_stdout(out):
            assert self.cli(*args) == 0
        return json.loads(out.getvalue())

    def pay_everything(self, customer: str) -> None:
        """Import a payment of the customer's whole balance, dated on the plan date."""
        plan = plan_collections(self.settings, self.sessions, date(2026, 11, 25), store=False)
        rows = [
            f"{customer},{AS_OF},{ledger.balance},{currency},SETTLE-{currency}"
            for (who, currency), ledger in plan.ledgers.items()
            if who == customer and ledger.balance > 0
        ]
        path = self.tmp / "settle.csv"
        path.write_text("customer,date,amount,currency,reference\n" + "\n".join(rows) + "\n")
        assert self.cli("payments", "import", str(path)) == 0
