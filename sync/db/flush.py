"""Flush-behind for large SQLite writes: the kernel writes the files out as they grow.

An invoice's lines are one transaction: a million lines put ~2 GB into the
write-ahead log, and the commit then copies them into the database. Durability
(``synchronous=NORMAL``) makes that commit flush the log before the copy and the
database after it. Left to the commit, both flushes write gigabytes while the
sync waits; flushed as they grow, by a thread that spends its time in
``fdatasync`` without the interpreter lock, the disk works while the sync
parses, and the commit finds little left to write. PostgreSQL does the same
with its ``*_flush_after`` settings. Durability is unchanged: SQLite still
flushes what it must, there is just less of it.

Never open or close the database files here. On POSIX, closing *any*
descriptor of a file drops every ``fcntl`` lock the process holds on it, so a
descriptor of our own, closed after a commit, silently released SQLite's
locks: another process then took the database for unused, checkpointed and
deleted the write-ahead log under the running sync, whose later commits were
lost (SQLite's "How To Corrupt" page, section 2.2). So the thread flushes the
descriptors SQLite itself holds, found in ``/proc/self/fd``; it never owns one.
Where there is no ``/proc`` (not Linux) it does nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Connection, Engine

__all__ = ["flush_behind", "sqlite_descriptors"]

# Often enough that little is left for the commit; each flush of an idle file is cheap.
FLUSH_EVERY = 0.1  # seconds

_sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
_PROC_FD = Path("/proc/self/fd")


@contextmanager
def flush_behind(bind: Engine | Connection) -> Iterator[None]:
    """While the block runs (commit included), flush the SQLite file and its log now and then.

    Nothing for other databases, an in-memory one, or a system without ``/proc``.
    """
    engine = bind.engine
    database = engine.url.database
    if (
        engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or not _PROC_FD.is_dir()
    ):
        yield
        return
    stop = threading.Event()
    real = os.path.realpath(database)
    targets = frozenset((real, f"{real}-wal"))
    thread = threading.Thread(target=_flush, args=(targets, stop), name="flush-behind", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def sqlite_descriptors(targets: frozenset[str]) -> dict[str, int]:
    """One descriptor this process already has open on each of ``targets`` (by real path)."""
    found: dict[str, int] = {}
    try:
        entries = os.listdir(_PROC_FD)
    except OSError:
        return found
    for entry in entries:
        try:
            target = os.readlink(_PROC_FD / entry)
        except OSError:
            continue  # closed meanwhile (or the listing's own descriptor)
        if target in targets and target not in found:
            found[target] = int(entry)
    return found


def _flush(targets: frozenset[str], stop: threading.Event) -> None:
    while not stop.wait(FLUSH_EVERY):
        for descriptor in sqlite_descriptors(targets).values():
            # If SQLite closed it since the listing and the number was reused, this flushes
            # some other file: harmless. A failure costs nothing either: SQLite's own
            # flushes at commit still happen.
            with suppress(OSError):
                _sync(descriptor)
