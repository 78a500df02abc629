"""Which of several ``pcsync daemon`` processes runs the scheduled jobs: the one holding a lock.

PostgreSQL: a session advisory lock on a dedicated connection. The server
releases it the moment that session ends — the leader died, or its session was
killed — and a standby polling ``pg_try_advisory_lock`` takes over. The leader
checks its session every poll; when the check fails it must stop scheduling at
once, since another daemon may already hold the lock.

A lost host (power, network) ends nothing by itself: TCP has to notice. So the
connection sets keepalives on both ends, tuned so that the leader notices first:

- this side (libpq): probes after 5 s idle, every 2 s, 3 missed → about 11 s; an
  unanswered check fails after ``tcp_user_timeout`` 15 s. With a poll of at most
  15 s the leader steps down within about 30 s of its last exchange.
- the server (``SET tcp_keepalives_*``): probes after 20 s idle, every 5 s, 4
  missed → about 40 s before it ends the session and frees the lock; a standby
  polling every 15 s at most then takes over within a minute.

SQLite (one file, one host): an ``flock`` on ``<database>.daemon.lock``, released
by the kernel when the holder dies; a second daemon on the same machine waits as
standby. It protects nothing across machines — SQLite does not belong on a
network share anyway. An in-memory database has one daemon by construction.
"""

from __future__ import annotations

import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

__all__ = ["LEADER_APPLICATION_NAME", "Leadership", "leader_backend_pid", "leadership_for"]

log = logging.getLogger(__name__)

LEADER_APPLICATION_NAME = "pcsync daemon leader lock"
# One leader per pcsync database, that is per PostgreSQL schema.
_KEY = "hashtext('pcsync daemon:' || current_schema())"
_CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # milliseconds
    "connect_timeout": 10,
    "application_name": LEADER_APPLICATION_NAME,
}
_SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 20",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 4",
)


class Leadership(Protocol):
    """A lock that makes one daemon the leader."""

    def try_acquire(self) -> bool:
        """Take the lock if free (True); never blocks for long, never raises for the database."""

    def still_held(self) -> bool:
        """Whether this daemon still holds the lock (a round trip on PostgreSQL)."""

    def release(self) -> None:
        """Give the lock up (at exit)."""


class _AdvisoryLeadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args=_CLIENT_KEEPALIVES,
            isolation_level="AUTOCOMMIT",
        )
        self._connection: Connection | None = None
        self._held = False
        self._unreachable = False  # said once per outage, not once per poll

    def try_acquire(self) -> bool:
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
                for statement in _SERVER_KEEPALIVES:
                    self._connection.execute(text(statement))
            got = self._connection.execute(text(f"SELECT pg_try_advisory_lock({_KEY})")).scalar()
        except SQLAlchemyError as exc:
            if not self._unreachable:
                log.warning("leader lock: database unreachable: %s", _first_line(exc))
            self._unreachable = True
            self._drop()
            return False
        if self._unreachable:
            log.info("leader lock: database reachable again")
        self._unreachable = False
        self._held = bool(got)
        return self._held

    def still_held(self) -> bool:
        if not self._held or self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.error("leader lock: its database session ended: %s", _first_line(exc))
            self._drop()
            return False
        return True

    def release(self) -> None:
        self._drop()  # ending the session frees its advisory locks
        self._engine.dispose()

    def _drop(self) -> None:
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except SQLAlchemyError:  # already gone: nothing left to close
                pass


class _FileLeadership:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {datetime.now(UTC).isoformat()}\n".encode(), 0)
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None  # the kernel keeps an flock as long as the file is open

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class _Always:
    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        pass


def leadership_for(engine: Engine) -> Leadership:
    """The leader lock for ``engine``'s database."""
    if engine.dialect.name == "postgresql":
        return _AdvisoryLeadership(engine)
    database = engine.url.database or ":memory:"
    if database == ":memory:":
        return _Always()
    return _FileLeadership(Path(database + ".daemon.lock"))


def leader_backend_pid(engine: Engine) -> int | None:
    """The PostgreSQL backend pid of the session holding the leader lock (None: no leader)."""
    with engine.connect() as connection:
        key = connection.execute(text(f"SELECT {_KEY}")).scalar_one()
        return connection.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) "
                "AND objsubid = 1 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
        ).scalar()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
