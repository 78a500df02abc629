"""Run history: every job records when it ran, why, what it did and how it ended."""

from __future__ import annotations

import enum
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import PcsyncError
from sync.db.models import QuarantinedRecord, Run
from sync.runtime.lock import lock_held
from sync.runtime.logs import redact

__all__ = [
    "RunRecorder",
    "RunStatus",
    "RunView",
    "Trigger",
    "last_run_id",
    "list_runs",
    "own_scheduled_run",
    "recorded_run",
    "settle_abandoned",
]

log = logging.getLogger(__name__)

Trigger = Literal["manual", "schedule"]


class RunStatus(enum.StrEnum):
    """How a run ended (``running`` while it runs; ``abandoned`` when its process died)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # finished, but something is missing: listed with the run
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"


class Proof(Protocol):
    """What a job proves about its own completeness (a sync's ``Completeness``)."""

    def as_json(self) -> dict[str, Any]:
        """The proof as stored with the run."""
        ...


@dataclass
class RunRecorder:
    """What a job reports about itself while it runs; saved when the run ends."""

    run_id: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: int = 0
    throttled: int = 0
    completeness: Proof | None = None

    def count(self, resource: str, what: str, n: int = 1) -> None:
        """Add ``n`` to a per-resource counter (fetched, inserted, updated, unchanged…)."""
        bucket = self.counts.setdefault(resource, {})
        bucket[what] = bucket.get(what, 0) + n


@dataclass(frozen=True)
class RunView:
    """A finished or running run, as shown by ``pcsync runs``."""

    id: int
    kind: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    requests: int
    throttled: int
    error: str | None
    completeness: dict[str, Any] | None = None
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The run as the JSON object of ``pcsync runs --json``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "trigger": self.trigger,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "counts": self.counts,
            "requests": self.requests,
            "throttled": self.throttled,
            "error": self.error,
            "completeness": self.completeness,
            "quarantined": self.quarantined,
        }


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def recorded_run(
    sessions: sessionmaker[Session],
    kind: str,
    trigger: Trigger,
    params: dict[str, Any] | None = None,
) -> Iterator[RunRecorder]:
    """Record a run around the ``with`` body: running → succeeded / partial / failed /
    interrupted.

    An error with a ``run_status`` (an incomplete sync: ``partial``) ends the run in
    that status. The run row is committed before the body starts, so a run killed
    outright still shows as ``running`` with its pid until it is seen to be
    ``abandoned``.
    """
    with sessions.begin() as session:
        run = Run(
            kind=kind,
            trigger=trigger,
            status=RunStatus.RUNNING,
            started_at=_now(),
            pid=os.getpid(),
            hostname=socket.gethostname(),
            params=params or {},
            counts={},
        )
        session.add(run)
        session.flush()
        run_id = run.id
    recorder = RunRecorder(run_id)
    status, error = RunStatus.SUCCEEDED, None
    try:
        yield recorder
    except PcsyncError as exc:
        status, error = getattr(exc, "run_status", RunStatus.FAILED), str(exc)
        raise
    except (KeyboardInterrupt, SystemExit):
        status, error = RunStatus.INTERRUPTED, "stopped by signal or user"
        raise
    except Exception as exc:
        status, error = RunStatus.FAILED, redact(f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        with sessions.begin() as session:
            stored = session.get_one(Run, run_id)
            stored.status = status
            stored.error = error
            stored.finished_at = _now()
            stored.counts = recorder.counts
            stored.requests = recorder.requests
            stored.throttled = recorder.throttled
            if recorder.completeness is not None:
                stored.completeness = recorder.completeness.as_json()
        log.info("%s run %d %s", kind, run_id, status)


def settle_abandoned(sessions: sessionmaker[Session], kind: str) -> int:
    """Store runs of ``kind`` left ``running`` as ``abandoned``; returns how many.

    Called by the holder of ``kind``'s lock: no other run of that kind can be alive.
    """
    with sessions.begin() as session:
        result = session.execute(
            update(Run)
            .where(Run.kind == kind, Run.status == RunStatus.RUNNING)
            .values(status=RunStatus.ABANDONED, finished_at=_now(), error=ABANDONED)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


ABANDONED = "the process ended without recording an end (killed, or its machine stopped)"
# Kinds of run that hold a lock while they run (sync/runtime/lock.py).
_LOCKED_KINDS = frozenset({"sync", "collections_apply"})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process of that pid
    return True


def _abandoned(session: Session, row: Run) -> bool:
    """Whether a ``running`` run's process is gone.

    PostgreSQL's lock table says it exactly for the kinds that lock; otherwise the pid
    does, on the same host (a pid is only meaningful there).
    """
    if row.kind in _LOCKED_KINDS:
        held = lock_held(session.get_bind().engine, row.kind, row.pid)
        if held is not None:
            return not held
    if row.hostname == socket.gethostname() and row.pid is not None:
        return not _pid_alive(row.pid)
    return False


def list_runs(sessions: sessionmaker[Session], limit: int = 50) -> list[RunView]:
    """The newest runs first; a run still ``running`` whose process is gone is shown
    as ``abandoned``."""
    with sessions() as session:
        rows = session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all()
        return _views(session, rows)


def last_run_id(sessions: sessionmaker[Session]) -> int:
    """The newest run's id (0 before the first run): what a job started later is above."""
    with sessions() as session:
        return int(session.scalar(select(func.max(Run.id))) or 0)


def own_scheduled_run(sessions: sessionmaker[Session], kind: str, after_id: int) -> RunView | None:
    """The scheduled run of ``kind`` this process started after run ``after_id``, if any.

    A scheduled job that fails before it records its run has none: the newest run of its
    kind is then an earlier one (or an admin's, started meanwhile), never its own.
    """
    with sessions() as session:
        rows = session.scalars(
            select(Run)
            .where(
                Run.kind == kind,
                Run.id > after_id,
                Run.trigger == "schedule",
                Run.pid == os.getpid(),
                Run.hostname == socket.gethostname(),
            )
            .order_by(Run.id.desc())
            .limit(1)
        ).all()
        views = _views(session, rows)
    return views[0] if views else None


def _views(session: Session, rows: Sequence[Run]) -> list[RunView]:
    """The runs as shown, each with the records its sync set aside."""
    kept: dict[int, list[dict[str, Any]]] = {}
    records = session.scalars(
        select(QuarantinedRecord)
        .where(QuarantinedRecord.run_id.in_([row.id for row in rows]))
        .order_by(QuarantinedRecord.id)
    )
    for record in records:
        kept.setdefault(record.run_id, []).append(
            {
                "unit": record.unit,
                "key": record.unit_key,
                "source": record.source_url,
                "reason": record.reason,
                "payload": record.payload,
            }
        )
    return [_view(session, row, kept.get(row.id, [])) for row in rows]


def _view(session: Session, row: Run, quarantined: list[dict[str, Any]]) -> RunView:
    status, error = row.status, row.error
    if status == RunStatus.RUNNING and _abandoned(session, row):
        status, error = RunStatus.ABANDONED, ABANDONED
    return RunView(
        id=row.id,
        kind=row.kind,
        trigger=row.trigger,
        status=status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=row.counts,
        requests=row.requests,
        throttled=row.throttled,
        error=error,
        completeness=row.completeness,
        quarantined=quarantined,
    )
