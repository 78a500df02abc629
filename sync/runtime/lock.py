"""One sync (and one collections apply) at a time per database.

PostgreSQL: a session-level advisory lock, released by the server if the
holder dies. SQLite: an ``flock`` on a file beside the database, released by
the kernel if the holder dies — a crashed run never leaves a stale lock. The
lock file records the holder's pid and start time for the message others see.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from sync.errors import LockedError

__all__ = ["lock_held", "run_lock"]

# One lock per kind of run and per pcsync database (a PostgreSQL schema): two of a kind on
# the same data never overlap. An apply also takes the sync's lock (after its own), since
# it writes subscriptions too.
_ADVISORY_KEY = "hashtext('pcsync:' || current_schema() || ':' || :kind)"


def _holder_text(kind: str, pid: str, started: str) -> str:
    try:
        when = datetime.fromisoformat(started).astimezone(UTC).strftime("%H:%M UTC")
    except ValueError:
        when = "unknown time"
    what = "sync" if kind == "sync" else "collections apply"
    return f"another {what} is running (pid {pid}, started {when}); retry later or use --wait"


@contextmanager
def _file_lock(path: Path, kind: str, wait: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            pid, started = ([*holder, "?", "?"])[:2]
            raise LockedError(_holder_text(kind, pid, started)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {datetime.now(UTC).isoformat()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextmanager
def _advisory_lock(engine: Engine, kind: str, wait: bool) -> Iterator[None]:
    with engine.connect() as connection:
        while True:
            got = connection.execute(
                text(f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})"), {"kind": kind}
            ).scalar()
            connection.commit()
            if got:
                break
            if not wait:
                holder = connection.execute(
                    text(
                        "SELECT pid, started_at FROM runs WHERE kind = :kind "
                        "AND status = 'running' ORDER BY id DESC LIMIT 1"
                    ),
                    {"kind": kind},
                ).first()
                pid, started = (str(holder[0]), holder[1].isoformat()) if holder else ("?", "?")
                raise LockedError(_holder_text(kind, pid, started))
            time.sleep(1)
        try:
            yield
        finally:
            connection.execute(text(f"SELECT pg_advisory_unlock({_ADVISORY_KEY})"), {"kind": kind})
            connection.commit()


@contextmanager
def run_lock(engine: Engine, *, wait: bool = False, kind: str = "sync") -> Iterator[None]:
    """Hold the database's lock for this kind of run for the ``with`` body (or raise LockedError).

    ``kind`` is ``sync`` or ``collections_apply``.
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, kind, wait):
            yield
        return
    database = engine.url.database or ":memory:"
    if database == ":memory:":
        yield
        return
    suffix = ".sync.lock" if kind == "sync" else f".{kind}.lock"
    with _file_lock(Path(database + suffix), kind, wait):
        yield


def lock_held(engine: Engine, kind: str = "sync") -> bool | None:
    """Whether some process holds ``kind``'s lock, without taking it; None if unknowable.

    PostgreSQL lists advisory locks in ``pg_locks`` (a 64-bit key as two 32-bit
    halves). SQLite's file lock cannot be probed without taking it, which would make a
    sync starting at that instant fail: the caller asks the pid instead.
    """
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        key = connection.execute(text(f"SELECT {_ADVISORY_KEY}"), {"kind": kind}).scalar_one()
        held = connection.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) "
                "AND objsubid = 1 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()))"
            ),
            {"high": (int(key) >> 32) & 0xFFFFFFFF, "low": int(key) & 0xFFFFFFFF},
        ).scalar_one()
    return bool(held)
