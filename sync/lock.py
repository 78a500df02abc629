"""One sync at a time per database.

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

from reconciliation.errors import LockedError

__all__ = ["run_lock"]

_ADVISORY_KEY = 0x70637379  # "pcsy"


def _holder_text(pid: str, started: str) -> str:
    try:
        when = datetime.fromisoformat(started).astimezone(UTC).strftime("%H:%M UTC")
    except ValueError:
        when = "unknown time"
    return f"another sync is running (pid {pid}, started {when}); retry later or use --wait"


@contextmanager
def _file_lock(path: Path, wait: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            pid, started = ([*holder, "?", "?"])[:2]
            raise LockedError(_holder_text(pid, started)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {datetime.now(UTC).isoformat()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextmanager
def _advisory_lock(engine: Engine, wait: bool) -> Iterator[None]:
    with engine.connect() as connection:
        while True:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _ADVISORY_KEY}
            ).scalar()
            connection.commit()
            if got:
                break
            if not wait:
                holder = connection.execute(
                    text(
                        "SELECT pid, started_at FROM runs WHERE kind = 'sync' "
                        "AND status = 'running' ORDER BY id DESC LIMIT 1"
                    )
                ).first()
                pid, started = (str(holder[0]), holder[1].isoformat()) if holder else ("?", "?")
                raise LockedError(_holder_text(pid, started))
            time.sleep(1)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY})
            connection.commit()


@contextmanager
def run_lock(engine: Engine, *, wait: bool = False) -> Iterator[None]:
    """Hold the database's sync lock for the ``with`` body (or raise LockedError)."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, wait):
            yield
        return
    database = engine.url.database or ":memory:"
    if database == ":memory:":
        yield
        return
    with _file_lock(Path(database + ".sync.lock"), wait):
        yield
