"""The audit log: who did what, when, to which customer and subscription.

Rows are only ever added (the database refuses updates and deletes, see
migration 0002). ``pcsync audit`` reads them back.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sync.db.models import AuditEntry

__all__ = ["AuditView", "current_actor", "list_audit", "record"]


def current_actor() -> str:
    """The operator's name for ``--by`` defaults: the OS user running pcsync."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid {os.getuid()}"


def record(
    session: Session,
    event: str,
    actor: str,
    *,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    run_id: int | None = None,
    **details: Any,
) -> None:
    """Append one audit entry (committed with the caller's transaction)."""
    session.add(
        AuditEntry(
            at=datetime.now(UTC),
            actor=actor,
            event=event,
            customer_id=customer_id,
            subscription_id=subscription_id,
            run_id=run_id,
            details={k: v for k, v in details.items() if v is not None},
        )
    )


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
