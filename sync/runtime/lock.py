"""One sync (and one collections apply) at a time per database.

PostgreSQL: a session-level advisory lock, released by the server if the
holder dies. SQLite: an ``flock`` on a file beside the database, released by
the kernel if the holder dies — a crashed run never leaves a stale lock. The
holder leaves what it is (a sync, a collections apply), its pid and start time
where others find them for their message: in the lock file (SQLite) or in its
lock connection's ``application_name`` (PostgreSQL).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from sync.errors import LockedError

__all__ = ["lock_held", "run_lock"]

log = logging.getLogger(__name__)

# One lock per kind of run and per pcsync database (a PostgreSQL schema): two of a kind on
# the same data never overlap. An apply also takes the sync's lock (after its own), since
# it writes subscriptions too.
_ADVISORY_KEY = "hashtext('pcsync:' || current_schema() || ':' || :kind)"
# The granted advisory lock ``l`` of a key given as its two 32-bit halves (how pg_locks
# lists a 64-bit key), in this database.
_GRANTED = (
    "l.locktype = 'advisory' AND l.granted "
    "AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid) AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "  # noqa: S608 - constant
    f"WHERE {_GRANTED}"
)


def _key_halves(connection: Connection, kind: str) -> dict[str, int]:
    key = int(connection.execute(text(f"SELECT {_ADVISORY_KEY}"), {"kind": kind}).scalar_one())
    return {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}


_WHAT = {"sync": "sync", "collections_apply": "collections apply"}


def _holder_text(what: str, pid: str, started: str) -> str:
    try:
        when = datetime.fromisoformat(started).astimezone(UTC).strftime("%H:%M UTC")
    except ValueError:
        when = "unknown time"
    return f"another {what} is running (pid {pid}, started {when}); retry later or use --wait"


@contextmanager
def _file_lock(path: Path, kind: str, holder: str, wait: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, started, what = (
                [*os.pread(fd, 200, 0).decode(errors="replace").split(maxsplit=2), "?", "?", ""]
            )[:3]
            busy = _holder_text(what.strip() or _WHAT[kind], pid, started)
            if not wait:
                raise LockedError(busy) from None
            log.info("waiting: %s", busy)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {datetime.now(UTC).isoformat()} {holder}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _advisory_holders(connection: Connection, kind: str) -> list[str]:
    """The ``application_name`` of the session holding ``kind``'s advisory lock (none: free)."""
    return list(connection.execute(text(_HOLDER), _key_halves(connection, kind)).scalars())


def _named(name: str) -> tuple[str, str, str] | None:
    """(pid, start, what) from a holder's ``pcsync:<pid>:<epoch>:<what>``; None if not one."""
    parts = name.split(":", 3)
    if len(parts) != 4 or parts[0] != "pcsync":
        return None
    try:
        started = datetime.fromtimestamp(int(parts[2]), UTC).isoformat()
    except ValueError:
        started = "?"
    return parts[1], started, parts[3]


def _advisory_holder(connection: Connection, kind: str) -> str:
    """What holds ``kind``'s advisory lock, for the message others see."""
    named = [_named(name or "") for name in _advisory_holders(connection, kind)]
    if named and named[0] is not None:
        pid, started, what = named[0]
        return _holder_text(what, pid, started)
    return _holder_text(_WHAT[kind], "?", "?")


@contextmanager
def _advisory_lock(engine: Engine, kind: str, holder: str, wait: bool) -> Iterator[None]:
    with engine.connect() as connection:
        waiting = False
        while True:
            got = connection.execute(
                text(f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})"), {"kind": kind}
            ).scalar()
            connection.commit()
            if got:
                break
            if not wait:
                busy = _advisory_holder(connection, kind)
                connection.commit()
                raise LockedError(busy)
            if not waiting:
                log.info("waiting: %s", _advisory_holder(connection, kind))
                connection.commit()
                waiting = True
            time.sleep(1)
        # 63 characters at most: pcsync:<pid>:<epoch>:<what> fits.
        name = f"pcsync:{os.getpid()}:{int(time.time())}:{holder}"
        connection.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        connection.commit()
        try:
            yield
        finally:
            # Unlock first: should the reset fail, no pooled connection keeps the lock.
            connection.execute(text(f"SELECT pg_advisory_unlock({_ADVISORY_KEY})"), {"kind": kind})
            connection.commit()
            connection.execute(text("RESET application_name"))
            connection.commit()


@contextmanager
def run_lock(
    engine: Engine, *, wait: bool = False, kind: str = "sync", holder: str | None = None
) -> Iterator[None]:
    """Hold the database's lock for this kind of run for the ``with`` body (or raise LockedError).

    ``kind`` is ``sync`` or ``collections_apply``; ``holder`` is what others are told
    holds it (by default the kind's own name: a collections apply also holds the sync's
    lock, as "collections apply"). With ``wait``, logs once that it waits, then waits.
    """
    holder = holder or _WHAT[kind]
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, kind, holder, wait):
            yield
        return
    database = engine.url.database or ":memory:"
    if database == ":memory:":
        yield
        return
    suffix = ".sync.lock" if kind == "sync" else f".{kind}.lock"
    with _file_lock(Path(database + suffix), kind, holder, wait):
        yield


def lock_held(engine: Engine, kind: str = "sync", pid: int | None = None) -> bool | None:
    """Whether some process holds ``kind``'s lock, without taking it; None if unknowable.

    With ``pid``: whether that process holds it. A collections apply holds the sync's
    lock too, so a dead sync's lock may be held — by the apply, not by the sync. A
    holder that does not say its pid (a pcsync before it did) counts as that process.

    PostgreSQL lists advisory locks in ``pg_locks`` (a 64-bit key as two 32-bit
    halves). SQLite's file lock cannot be probed without taking it, which would make a
    sync starting at that instant fail: the caller asks the pid instead.
    """
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        holders = _advisory_holders(connection, kind)
    if not holders:
        return False
    named = _named(holders[0] or "")
    return pid is None or named is None or named[0] == str(pid)
