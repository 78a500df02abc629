"""Holds: a customer's collections paused until a date (a dispute, a promise to pay, a plan).

While a hold is in force the plan flags the customer no further than ``none``
(with the hold as its reason, so the plan and the reports show it); approvals
lapse with it, recorded when the hold is placed — a hold released before any
apply must not bring back an approval given before it. Collections resume on
the hold's date, or when it is released. A hold does not undo a suspension
already made: reactivation follows payment as usual — a credit in another currency
reactivates nobody still at a suspend stage — and auto-renew pcsync turned off
stays off. Holding and releasing are audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import InputError
from reconciliation.policy import PRESSED, Flag
from sync import audit
from sync.customer_lookup import resolve_customers
from sync.db.models import Approval, CollectionHold

__all__ = ["HoldView", "held_back", "hold", "holds_in_force", "release", "with_holds"]


@dataclass(frozen=True)
class HoldView:
    """A hold as the CLI reports it."""

    id: int
    customer_id: str
    until: date
    reason: str
    held_by: str


def holds_in_force(session: Session, as_of: date) -> dict[str, CollectionHold]:
    """The hold in force per customer on this date (the latest, when several)."""
    rows = session.scalars(
        select(CollectionHold)
        .where(CollectionHold.released_at.is_(None), CollectionHold.until > as_of)
        .order_by(CollectionHold.id)
    )
    return {row.customer_id: row for row in rows}


def held_back(flags: list[Flag], holds: dict[str, CollectionHold]) -> frozenset[str]:
    """The customers a hold keeps from a follow_up or suspend stage: they have not paid.

    Their flags say ``none`` while held, yet nothing pcsync undoes on payment
    (auto-renew it turned off) may be undone for them.
    """
    return frozenset(f.customer_id for f in flags if f.customer_id in holds and f.action in PRESSED)


def with_holds(flags: list[Flag], holds: dict[str, CollectionHold]) -> list[Flag]:
    """The flags with each held customer kept at ``none``, the hold first among its reasons.

    A held customer still at a suspend stage in one currency is not reactivated
    for another (a credit there): the hold sets the suspension stage aside, it
    does not pay it, and reactivation follows payment.
    """
    suspended = {f.customer_id: f.currency for f in flags if f.action == "suspend"}
    held = []
    for flag in flags:
        row = holds.get(flag.customer_id)
        if row is None or flag.action == "none":
            held.append(flag)
            continue
        why = f"on hold until {row.until} (by {row.held_by}): {row.reason}"
        if flag.action == "reactivate":
            if flag.customer_id not in suspended:
                held.append(flag)
                continue
            why += (
                f"; still at a suspend stage in {suspended[flag.customer_id]}: "
                "reactivation follows payment"
            )
        held.append(replace(flag, action="none", stage=None, reasons=(why, *flag.reasons)))
    return held


def hold(
    sessions: sessionmaker[Session],
    customer: str,
    until: date,
    reason: str,
    actor: str,
    today: date,
) -> HoldView:
    """Pause this customer's collections until ``until`` (a later date than today)."""
    if until <= today:
        raise InputError(f"--until {until}: a hold must end after today ({today})")
    if not reason.strip():
        raise InputError("--reason: say why collections are paused (for the audit log)")

    with sessions.begin() as session:
        customer_id = resolve_customers(session, [customer])[customer]
        row = CollectionHold(
            customer_id=customer_id,
            until=until,
            reason=reason.strip(),
            held_by=actor,
            held_at=datetime.now(UTC),
            released_at=None,
            released_by=None,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            "hold",
            actor,
            customer_id=customer_id,
            hold_id=row.id,
            until=until.isoformat(),
            reason=row.reason,
        )
        _lapse_approvals(session, customer_id, row, actor)
        return HoldView(row.id, customer_id, until, row.reason, actor)


def _lapse_approvals(session: Session, customer_id: str, row: CollectionHold, actor: str) -> None:
    """End the customer's open approvals: they were given on facts the hold set aside."""
    why = f"on hold until {row.until} (by {row.held_by}): {row.reason}"
    for approval in session.scalars(
        select(Approval).where(Approval.customer_id == customer_id, Approval.revoked_at.is_(None))
    ):
        approval.revoked_at, approval.revoked_reason = row.held_at, f"lapsed: {why}"
        audit.record(
            session,
            "approval_lapsed",
            actor,
            customer_id=customer_id,
            approval_id=approval.id,
            reason=why,
        )


def release(sessions: sessionmaker[Session], customer: str, actor: str) -> int:
    """End this customer's holds now; how many were in force."""

    now = datetime.now(UTC)
    with sessions.begin() as session:
        customer_id = resolve_customers(session, [customer])[customer]
        rows = session.scalars(
            select(CollectionHold).where(
                CollectionHold.customer_id == customer_id, CollectionHold.released_at.is_(None)
            )
        ).all()
        for row in rows:
            row.released_at, row.released_by = now, actor
            audit.record(session, "release", actor, customer_id=customer_id, hold_id=row.id)
        return len(rows)
