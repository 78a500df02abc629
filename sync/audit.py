"""The audit log: who did what, when, to which customer and subscription — provably.

Rows are only ever added: the database refuses updates and deletes (and, on
PostgreSQL, TRUNCATE), see migrations 0002 and 0008; ``pcsync init`` puts back
a trigger that went missing. Because whoever owns the database can still drop
a trigger, every entry also carries ``seq`` (its position, from 1) and
``hash`` = sha256 over a canonical encoding of the entry and the previous
entry's hash. An edited, forged or removed entry breaks the chain from there
on. The chain's head (count and hash) is written outside the database after
every commit that appends (``pcsync-audit.head`` beside the SQLite database
or the config file, and the log), so entries removed from the end are found
too. ``pcsync audit verify`` checks all of it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from sync.config import Settings
from sync.db.models import AuditEntry

__all__ = [
    "GENESIS",
    "HEAD_FILE",
    "AuditView",
    "ChainCheck",
    "attach_head",
    "current_actor",
    "entry_hash",
    "head_path",
    "list_audit",
    "read_head",
    "record",
    "restore_triggers",
    "verify_chain",
    "write_head",
]

log = logging.getLogger(__name__)

HEAD_FILE = "pcsync-audit.head"
GENESIS = "0" * 64  # the "previous hash" of the first entry
_HEAD_KEY = "pcsync.audit_head"
_PENDING_KEY = "pcsync.audit_pending"
_LOCK_KEY = 0x70637379_6E63  # pg_advisory_xact_lock: one appender at a time


def current_actor() -> str:
    """The operator's name for ``--by`` defaults: the OS user running pcsync."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid {os.getuid()}"


# --- the chain -------------------------------------------------------------------------


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    event_name: str,
    customer_id: str | None,
    subscription_id: str | None,
    run_id: int | None,
    details: dict[str, Any],
    previous: str,
) -> str:
    """sha256 of the entry's canonical JSON (sorted keys, no spaces) and the previous hash.

    The encoding is part of the stored evidence: changing it breaks every chain.
    """
    document = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "event": event_name,
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "run_id": run_id,
        "details": details,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode() + b"\n" + previous.encode()).hexdigest()


def _row_hash(row: AuditEntry, previous: str) -> str:
    return entry_hash(
        row.seq,
        row.at,
        row.actor,
        row.event,
        row.customer_id,
        row.subscription_id,
        row.run_id,
        row.details,
        previous,
    )


def _lock_chain(session: Session) -> None:
    """Serialise appenders, so two transactions never chain to the same entry."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(text(f"pg_advisory_xact_lock({_LOCK_KEY})")))
    else:  # takes SQLite's write lock now (changes no row, so no trigger fires)
        session.execute(text("UPDATE audit_log SET seq = seq WHERE 0 = 1"))


def record(
    session: Session,
    event_name: str,
    actor: str,
    *,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    run_id: int | None = None,
    **details: Any,
) -> None:
    """Append one audit entry, chained to the last (committed with the caller's transaction)."""
    _lock_chain(session)
    session.flush()  # entries added earlier in this transaction are part of the chain
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, previous = (last[0] + 1, last[1]) if last else (1, GENESIS)
    # Stored as JSON reads it back, so the hash verifies against the stored row.
    kept = json.loads(json.dumps({k: v for k, v in details.items() if v is not None}))
    at = datetime.now(UTC)
    digest = entry_hash(
        seq, at, actor, event_name, customer_id, subscription_id, run_id, kept, previous
    )
    session.add(
        AuditEntry(
            at=at,
            actor=actor,
            event=event_name,
            customer_id=customer_id,
            subscription_id=subscription_id,
            run_id=run_id,
            details=kept,
            seq=seq,
            hash=digest,
        )
    )
    session.flush()
    session.info[_PENDING_KEY] = (seq, digest)
    if not session.info.get(_PENDING_KEY + ".listening"):
        session.info[_PENDING_KEY + ".listening"] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending is None:
        return
    path = session.info.get(_HEAD_KEY) or _sqlite_head(session)
    if path is None:
        log.warning("audit head %d %s not written: no head file configured", *pending)
        return
    write_head(path, *pending)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


# --- the head outside the database ------------------------------------------------------


def head_path(settings: Settings) -> Path:
    """Where the chain's head is kept: beside the SQLite database, else beside the config."""
    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / HEAD_FILE
    folder = settings.source.parent if settings.source is not None else Path.cwd()
    return folder / HEAD_FILE


def _sqlite_head(session: Session) -> Path | None:
    bind = session.get_bind()
    url = bind.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / HEAD_FILE
    return None


def attach_head(sessions: sessionmaker[Session], path: Path) -> None:
    """Have every session of this factory write the chain's head to ``path`` on commit."""
    info = dict(sessions.kw.get("info") or {})
    info[_HEAD_KEY] = path
    sessions.configure(info=info)


def write_head(path: Path, count: int, digest: str) -> None:
    """Replace the head file atomically, and log the head."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{count} {digest}\n", encoding="ascii")
    os.replace(temporary, path)
    log.info("audit head: %d entries, last hash %s", count, digest)


def read_head(path: Path) -> tuple[int, str] | None:
    """(count, hash) from the head file, or None when there is none."""
    try:
        count, digest = path.read_text(encoding="ascii").split()
        return int(count), digest
    except FileNotFoundError:
        return None
    except ValueError:
        return -1, "unreadable"


@dataclass(frozen=True)
class ChainCheck:
    """What ``pcsync audit verify`` found."""

    count: int  # entries whose links verified, in order
    last_hash: str
    problem: str | None  # the first broken link, or a head that does not match

    @property
    def ok(self) -> bool:
        """True when every link and the head match."""
        return self.problem is None

    def text(self) -> str:
        """One line for the terminal, the log and the webhook."""
        if self.ok:
            return f"audit log ok: {self.count} entries, last hash {self.last_hash}"
        return f"audit log broken: {self.problem}"


def _links(rows: Iterable[AuditEntry]) -> tuple[int, str, str | None]:
    count, previous = 0, GENESIS
    for row in rows:
        if row.seq != count + 1:
            where = f"entry {count + 1} is missing" if row.seq > count + 1 else "a repeated entry"
            return count, previous, f"{where} (entry id {row.id} has position {row.seq})"
        if row.hash != _row_hash(row, previous):
            at = f"{row.at:%Y-%m-%d %H:%M:%S}"
            what = f"entry {row.seq} (id {row.id}, {row.event} at {at})"
            return count, previous, f"{what} does not match its hash: it was edited or forged"
        count, previous = row.seq, row.hash
    return count, previous, None


def verify_chain(sessions: sessionmaker[Session], head: Path | None) -> ChainCheck:
    """Recompute every link, oldest first (streamed), then compare the head file."""
    query = select(AuditEntry).order_by(AuditEntry.seq, AuditEntry.id)
    with sessions() as session:
        rows = session.scalars(query.execution_options(yield_per=1000))
        try:
            count, last, problem = _links(rows)
        finally:
            rows.close()  # a broken link stops the read midway: release the server cursor
    if problem is not None or head is None:
        return ChainCheck(count, last, problem)
    stored = read_head(head)
    if stored is None:
        if count == 0:
            return ChainCheck(0, last, None)
        return ChainCheck(count, last, f"no head file at {head}: the end of the log is unproven")
    if stored != (count, last):
        return ChainCheck(
            count,
            last,
            f"the head file {head} says {stored[0]} entries ending {stored[1][:16]}…, the log "
            f"has {count} ending {last[:16]}…: entries were removed from the end (or added "
            "without pcsync)",
        )
    return ChainCheck(count, last, None)


# --- the triggers that refuse changes ------------------------------------------------------

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$ LANGUAGE plpgsql
"""
_PG_TRIGGERS = {
    "audit_log_append_only": "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE "
    "ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "audit_log_no_truncate": "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE "
    "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
}
_SQLITE_TRIGGERS = {
    f"audit_log_no_{verb.lower()}": f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} "
    "ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
}


def restore_triggers(engine: Engine) -> list[str]:
    """Recreate (or re-enable) any trigger guarding the audit log; the names restored."""
    restored = []
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT tgname, tgenabled FROM pg_trigger "
                    "WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
                )
            )
            found: dict[str, str] = {name: enabled for name, enabled in rows}
            connection.execute(text(_PG_FUNCTION))
            for name, ddl in _PG_TRIGGERS.items():
                if name not in found:
                    connection.execute(text(ddl))
                    restored.append(name)
                elif found[name] == "D":
                    connection.execute(text(f"ALTER TABLE audit_log ENABLE TRIGGER {name}"))
                    restored.append(name)
        else:
            found_names = set(
                connection.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                ).scalars()
            )
            for name, ddl in _SQLITE_TRIGGERS.items():
                if name not in found_names:
                    connection.execute(text(ddl))
                    restored.append(name)
    return restored


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditView:
    """One audit entry as ``pcsync audit`` shows it."""

    id: int
    at: datetime
    actor: str
    event: str
    customer_id: str | None
    subscription_id: str | None
    run_id: int | None
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The entry as in ``pcsync audit --json``."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "event": self.event,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "run_id": self.run_id,
            "details": self.details,
        }


def list_audit(
    sessions: sessionmaker[Session], customer_id: str | None = None, limit: int | None = None
) -> list[AuditView]:
    """Audit entries, oldest first (the newest ``limit`` of them when given)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if customer_id is not None:
        query = query.where(AuditEntry.customer_id == customer_id.lower())
    if limit is not None:
        query = query.limit(limit)
    with sessions() as session:
        rows = session.scalars(query).all()
        views = [
            AuditView(
                r.id, r.at, r.actor, r.event, r.customer_id, r.subscription_id, r.run_id, r.details
            )
            for r in rows
        ]
    return views[::-1]
