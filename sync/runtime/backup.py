"""``pcsync backup``: a consistent copy of the database, taken while pcsync runs.

SQLite: SQLite's online backup API copies the database in one step inside one
read transaction, so the copy is the database as it was at one instant — every
committed invoice, never half of one — while a sync goes on writing beside it
(the write-ahead log lets a reader and the writer work at the same time). The
copy is written beside the target under a temporary name, checked
(``PRAGMA quick_check``, schema revision), made a single self-contained file
(rollback journal, no ``-wal`` beside it) readable by its owner only, and only
then given its name: a failed backup never leaves a half-written file where a
good one is expected, and an existing file is kept unless ``force``.

PostgreSQL: the database belongs to its server, whose own tool takes consistent
copies. :func:`pg_dump_command` builds the documented ``pg_dump`` command from the
configured URL (host, port, user, database, and the schema when the URL selects
one with ``options=-csearch_path=…``), never with the password; ``pcsync backup``
prints it, or runs it with ``--run`` (the password, if the URL has one, goes to
pg_dump in ``PGPASSWORD``, as ``~/.pgpass`` would).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import make_url

from reconciliation.errors import InputError
from sync.errors import DatabaseError

__all__ = ["BackupResult", "PgDump", "backup_sqlite", "pg_dump_command", "run_pg_dump"]


@dataclass(frozen=True)
class BackupResult:
    """A backup written: where, of what, how big and how long it took."""

    path: Path
    source: str  # the database URL, without a password
    revision: str | None  # the schema revision the copy is at
    size: int
    seconds: float


def _claim(target: Path, force: bool) -> None:
    """Refuse an existing target unless ``force``; the target's folder must exist."""
    if target.is_dir():
        raise InputError(f"{target} is a folder: give the backup's file name")
    if target.exists() and not force:
        raise InputError(f"{target} exists: choose another name, or pass --force to replace it")
    if not target.parent.is_dir():
        raise InputError(f"{target.parent} does not exist: create the folder first")


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.partial")


def _publish(temporary: Path, target: Path, force: bool) -> None:
    """Give the finished copy its name: atomically, and never over a file unless ``force``."""
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)  # fails if the target appeared meanwhile
    except FileExistsError as exc:
        raise InputError(
            f"{target} exists: choose another name, or pass --force to replace it"
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def backup_sqlite(url: str, target: Path, *, force: bool = False) -> BackupResult:
    """Copy the SQLite database at ``url`` to ``target`` with SQLite's online backup API."""
    parsed = make_url(url)
    source_name = parsed.database or ""
    shown = parsed.render_as_string(hide_password=True)
    if source_name in ("", ":memory:"):
        raise InputError(f"{shown} is an in-memory database: there is nothing to back up")
    source = Path(source_name)
    if not source.is_file():
        raise DatabaseError(f"no database at {source}: check [database] url, or run `pcsync init`")
    target = target.expanduser().absolute()
    if target == source.absolute():
        raise InputError(f"{target} is the database itself: give another file name")
    _claim(target, force)
    temporary = _temporary(target)
    _remove(temporary)
    started = time.monotonic()
    try:
        # Opened as any reader opens it (a read-only connection could not tidy up the
        # write-ahead log's files when it is the last to close); the backup only reads.
        reader = sqlite3.connect(source, timeout=30)
        try:
            copy = sqlite3.connect(temporary)
            try:
                reader.backup(copy)  # one step: one read transaction, one instant
                copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
                check = copy.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise DatabaseError(f"the copy of {source} failed its check: {check}")
                revision = _revision(copy)
            finally:
                copy.close()
        finally:
            reader.close()
        os.chmod(temporary, 0o600)  # billing data: the owner's only
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        size = temporary.stat().st_size
        _publish(temporary, target, force)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot back up {source}: {exc}") from exc
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        _remove(temporary)
    return BackupResult(target, shown, revision, size, time.monotonic() - started)


def _revision(connection: sqlite3.Connection) -> str | None:
    found = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if found is None:
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class PgDump:
    """The ``pg_dump`` command for a PostgreSQL URL, and the password kept apart from it."""

    target: Path
    connection: tuple[str, ...]  # --host, --port, --username
    schema: str | None
    database: str
    password: str | None = field(repr=False)
    shown_url: str  # the URL without its password

    @property
    def argv(self) -> tuple[str, ...]:
        schema = (f"--schema={self.schema}",) if self.schema else ()
        return (
            "pg_dump",
            "--format=custom",
            f"--file={self.target}",
            *self.connection,
            *schema,
            self.database,
        )

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @property
    def restore(self) -> str:
        """The matching restore: replaces pcsync's tables in the database, keeps the rest."""
        return shlex.join(
            (
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                *self.connection,
                f"--dbname={self.database}",
                str(self.target),
            )
        )


_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([^\s,]+)")


def pg_dump_command(url: str, target: Path) -> PgDump:
    """The documented ``pg_dump`` command that backs up the database at ``url`` to ``target``.

    Custom format (``--format=custom``: compressed, restored with ``pg_restore``); only
    the schema the URL selects, if it selects one; never the password.
    """
    parsed = make_url(url)
    connection = []
    if parsed.host:
        connection.append(f"--host={parsed.host}")
    if parsed.port:
        connection.append(f"--port={parsed.port}")
    if parsed.username:
        connection.append(f"--username={parsed.username}")
    schema = None
    options = parsed.query.get("options")
    for option in (options,) if isinstance(options, str) else options or ():
        match = _SEARCH_PATH.search(unquote(option))
        if match:
            schema = match.group(1)
    return PgDump(
        target=target,
        connection=tuple(connection),
        schema=schema,
        database=parsed.database or parsed.username or "postgres",
        password=parsed.password,
        shown_url=parsed.render_as_string(hide_password=True),
    )


def run_pg_dump(url: str, target: Path, *, force: bool = False) -> BackupResult:
    """Run :func:`pg_dump_command` (pg_dump on PATH), written under a temporary name first."""
    target = target.expanduser().absolute()
    _claim(target, force)
    executable = shutil.which("pg_dump")
    if executable is None:
        raise DatabaseError(
            "pg_dump is not installed: install PostgreSQL's client tools "
            "(Debian: apt install postgresql-client), or run the command shown by "
            "`pcsync backup FILE` where they are"
        )
    temporary = _temporary(target)
    dump = pg_dump_command(url, temporary)
    env = dict(os.environ)
    if dump.password:
        env["PGPASSWORD"] = dump.password
    started = time.monotonic()
    try:
        done = subprocess.run(
            [executable, *dump.argv[1:]], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[0] if lines else f"exit code {done.returncode}"
            raise DatabaseError(f"pg_dump failed: {reason}")
        os.chmod(temporary, 0o600)
        size = temporary.stat().st_size
        _publish(temporary, target, force)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return BackupResult(target, dump.shown_url, None, size, time.monotonic() - started)
