"""Run history: every job records when it ran, why, what it did and how it ended."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import PcsyncError
from sync.db.models import Run

__all__ = ["RunRecorder", "RunView", "Trigger", "list_runs", "recorded_run"]

log = logging.getLogger(__name__)

Trigger = Literal["manual", "schedule"]


@dataclass
class RunRecorder:
    """What a job reports about itself while it runs; saved when the run ends."""

    run_id: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: int = 0
    throttled: int = 0

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
    """Record a run around the ``with`` body: running → succeeded / failed / interrupted.

    The run row is committed before the body starts, so a run killed outright
    still shows as ``running`` with its pid (and the next lock holder can tell
    it died).
    """
    with sessions.begin() as session:
        run = Run(
            kind=kind,
            trigger=trigger,
            status="running",
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
    status, error = "succeeded", None
    try:
        yield recorder
    except PcsyncError as exc:
        status, error = "failed", str(exc)
        raise
    except (KeyboardInterrupt, SystemExit):
        status, error = "interrupted", "stopped by signal or user"
        raise
    except Exception as exc:
        status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
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
        log.info("%s run %d %s", kind, run_id, status)


def list_runs(sessions: sessionmaker[Session], limit: int = 50) -> list[RunView]:
    """The newest runs first."""
    with sessions() as session:
        rows = session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all()
        return [
            RunView(
                id=row.id,
                kind=row.kind,
                trigger=row.trigger,
                status=row.status,
                started_at=row.started_at,
                finished_at=row.finished_at,
                counts=row.counts,
                requests=row.requests,
                throttled=row.throttled,
                error=row.error,
            )
            for row in rows
        ]
