"""The audit log as evidence: hash-chained entries, a head outside the database, triggers.

On SQLite and PostgreSQL: whoever can reach the database and drop a trigger can
change rows, but `pcsync audit verify` finds each change (exit 1), and what the
database can refuse it refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import audit
from sync.cli import main
from sync.config import load_settings
from sync.db.engine import make_engine, make_session_factory


class Log:
    """A migrated database with five audit entries, written as pcsync writes them."""

    def __init__(self, config: Path) -> None:
        self.config = config
        assert main(["--config", str(config), "init"]) == 0
        self.settings = load_settings(config, {})
        self.engine = make_engine(self.settings.database.url)
        self.sessions = make_session_factory(self.engine)
        self.head = audit.head_path(self.settings)
        audit.attach_head(self.sessions, self.head)
        for n in range(5):
            with self.sessions.begin() as session:
                audit.record(session, "approved", f"ops{n}", customer_id=f"c{n}", note="late")

    def verify(self) -> int:
        return main(["--config", str(self.config), "audit", "verify"])

    def unguarded(self, statement: str) -> None:
        """Run ``statement`` the way someone who owns the database could: triggers off."""
        with self.engine.begin() as c:
            if self.engine.dialect.name == "postgresql":
                c.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
                c.execute(sa.text(statement))
                c.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
            else:
                c.execute(sa.text("DROP TRIGGER audit_log_no_update"))
                c.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
                c.execute(sa.text(statement))
        audit.restore_triggers(self.engine)


@pytest.fixture
def log(db_url: str, write_config) -> Iterator[Log]:  # type: ignore[no-untyped-def]
    made = Log(write_config(db_url=db_url))
    yield made
    made.engine.dispose()


def test_an_untouched_log_verifies_with_its_count(log: Log, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert log.verify() == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log ok: 5 entries")
    count, digest = log.head.read_text().split()
    assert count == "5"
    assert digest in out


FORGED = (
    "INSERT INTO audit_log (at, actor, event, details, seq, hash) VALUES "
    "('2026-01-02 03:04:05', 'mallory', 'approved', '{}', 6, '" + "ab" * 32 + "')"
)
TAMPERING: dict[str, tuple[Callable[[Log], None], str]] = {
    "forged row": (lambda log: log.unguarded(FORGED), "entry 6 (id 6, approved at 2026-01-02"),
    "edited row": (
        lambda log: log.unguarded("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"),
        "entry 3 (id 3",
    ),
    "deleted from the middle": (
        lambda log: log.unguarded("DELETE FROM audit_log WHERE seq = 2"),
        "entry 2 is missing",
    ),
    "last rows deleted": (
        lambda log: log.unguarded("DELETE FROM audit_log WHERE seq >= 4"),
        "says 5 entries",
    ),
    "emptied": (lambda log: log.unguarded("DELETE FROM audit_log"), "the log has 0"),
}


@pytest.mark.parametrize("tamper", list(TAMPERING), ids=list(TAMPERING))
def test_verify_finds_each_change_behind_the_databases_back(log: Log, tamper: str, capsys) -> None:  # type: ignore[no-untyped-def]
    change, expected = TAMPERING[tamper]
    change(log)
    capsys.readouterr()
    assert log.verify() == 1
    err = capsys.readouterr().err
    assert err.startswith("pcsync: error: audit log broken: ")
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_forging_a_head_file_for_a_shortened_log_is_still_found(log: Log, capsys) -> None:  # type: ignore[no-untyped-def]
    log.unguarded("DELETE FROM audit_log WHERE seq = 5")
    log.head.write_text(f"5 {'cd' * 32}\n")  # count kept, hash made up
    capsys.readouterr()
    assert log.verify() == 1
    assert "says 5 entries" in capsys.readouterr().err


def test_a_truncation_behind_the_databases_back_is_found(log: Log, capsys) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL: its statement trigger disabled too; SQLite's truncation is an unqualified
    # DELETE (its "truncate optimisation"), run with the triggers dropped.
    with log.engine.begin() as c:
        if log.engine.dialect.name == "postgresql":
            c.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate"))
            c.execute(sa.text("TRUNCATE audit_log"))
            c.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate"))
        else:
            c.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            c.execute(sa.text("DELETE FROM audit_log"))
    audit.restore_triggers(log.engine)
    capsys.readouterr()
    assert log.verify() == 1
    err = capsys.readouterr().err
    assert err.startswith("pcsync: error: audit log broken: ")
    assert "the log has 0" in err, err


def _refused(log: Log, statement: str) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), log.engine.begin() as c:
        c.execute(sa.text(statement))
    with log.engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM audit_log")) == 5


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_the_database_refuses_changes(log: Log, statement: str) -> None:
    _refused(log, statement)


# SQLite has no TRUNCATE (its DELETE without WHERE is refused above); PostgreSQL's row
# triggers do not see one, so it has a statement trigger of its own.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_refuses_truncation(log: Log) -> None:
    _refused(log, "TRUNCATE audit_log")


def test_init_restores_a_dropped_trigger_and_says_so(log: Log, capsys) -> None:  # type: ignore[no-untyped-def]
    with log.engine.begin() as c:
        if log.engine.dialect.name == "postgresql":
            c.execute(sa.text("DROP TRIGGER audit_log_no_truncate ON audit_log"))
            c.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            dropped = ["audit_log_append_only", "audit_log_no_truncate"]
        else:
            c.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            dropped = ["audit_log_no_delete"]
    capsys.readouterr()
    assert main(["--config", str(log.config), "init"]) == 0
    out = capsys.readouterr().out
    assert all(f"trigger {name} was missing or disabled; restored" in out for name in dropped)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), log.engine.begin() as c:
        c.execute(sa.text("DELETE FROM audit_log"))
    assert main(["--config", str(log.config), "init"]) == 0
    assert "restored" not in capsys.readouterr().out  # nothing missing the second time
