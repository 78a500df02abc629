"""Approvals: an admin's go-ahead to act against one customer, valid while nothing has changed.

An approval is of one kind: ``suspend`` (suspend the customer's subscriptions;
the customer must be at a suspend stage) or ``stop_renewal`` (turn off
auto-renew of the new-commerce terms the renewal guard lists; at a follow_up
or suspend stage). It records what the approver saw — per currency, the stage,
how much the customer had paid, which payments it had seen, and the kind. It
lapses after ``approval_valid_days``, when any payment it had not seen is
recorded (a void in between does not hide it), or when it is no
longer at a stage its kind needs. A new approval supersedes the one of the same kind.

Reading which approvals are in force (``approvals_in_force``, ``valid_approvals``,
``stop_renewal_approvals``) changes nothing: a lapsed approval is simply not in
force. Recording the lapse — the approval marked revoked with the reason, and
audited — is a step of its own, ``lapse_approvals``, taken by the commands that
act (``collections apply --apply``, ``approve``) and by the daemon's collections
round, so ``collections plan`` and dry runs leave the database as they found it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import InputError
from reconciliation.ledger import CustomerLedger
from reconciliation.money import round_money
from reconciliation.policy import PRESSED
from sync import audit
from sync.collections.plan import CollectionsPlan, plan_collections, store_flags
from sync.config import Settings
from sync.customer_lookup import resolve_customers
from sync.db.models import Approval, CollectionFlag, Customer

__all__ = [
    "KINDS",
    "ApprovalView",
    "Kind",
    "approval_kind",
    "approvals_in_force",
    "approve",
    "lapse_approvals",
    "lapse_reason",
    "resolve_customers",
    "revoke",
    "stop_renewal_approvals",
    "valid_approvals",
]

Kind = Literal["suspend", "stop_renewal"]
KINDS: dict[str, tuple[str, ...]] = {  # the plan actions each kind of approval needs
    "suspend": ("suspend",),
    "stop_renewal": PRESSED,
}


@dataclass(frozen=True)
class ApprovalView:
    """An approval as the CLI reports it."""

    id: int
    customer_id: str
    customer_name: str
    approved_by: str
    expires_at: datetime
    kind: Kind = "suspend"


def approval_kind(approval: Approval) -> Kind:
    """What this approval authorises (approvals made before kinds existed: suspend)."""
    kinds = {seen.get("kind", "suspend") for seen in approval.basis.values()}
    return "stop_renewal" if kinds == {"stop_renewal"} else "suspend"


def _basis(plan: CollectionsPlan, customer_id: str, kind: Kind) -> dict[str, dict[str, Any]]:
    basis: dict[str, dict[str, Any]] = {}
    for flag in plan.for_customer(customer_id):
        if flag.action in KINDS[kind]:
            ledger = plan.ledgers[(customer_id, flag.currency)]
            basis[flag.currency] = {
                "stage": flag.stage or "",
                "paid": str(ledger.paid),
                # Which payments the approver saw: any other one lapses the approval.
                "payments": sorted(p.reference for p in ledger.payments),
            }
            if kind != "suspend":
                basis[flag.currency]["kind"] = kind
    return basis


def lapse_reason(approval: Approval, plan: CollectionsPlan, now: datetime) -> str | None:
    """Why this approval no longer holds, or None while it does."""
    if approval.expires_at <= now:
        return f"expired {approval.expires_at:%Y-%m-%d %H:%M} UTC"
    kind = approval_kind(approval)
    for currency, seen in sorted(approval.basis.items()):
        flag = plan.flag(approval.customer_id, currency)
        if flag is None or flag.action not in KINDS[kind]:
            now_at = f"{flag.action} at {flag.stage or 'no stage'}" if flag else "nothing owed"
            stage = "a suspend stage" if kind == "suspend" else "a follow_up or suspend stage"
            return f"no longer at {stage} in {currency} (now {now_at})"
        more = _paid_since(seen, plan.ledgers[(approval.customer_id, currency)])
        if more is not None:
            return f"the customer paid {round_money(more, currency)} {currency} since the approval"
    return None


def _paid_since(seen: dict[str, Any], ledger: CustomerLedger) -> Decimal | None:
    """What the customer paid since the approval, or None if nothing.

    Any payment the approver did not see counts, whatever else changed: a payment
    voided since (a bounced cheque) must not hide a new one behind equal totals.
    Approvals recorded before the payments were listed compare the totals.
    """
    if "payments" not in seen:
        more = ledger.paid - Decimal(seen["paid"])
        return more if more > 0 else None
    known = set(seen["payments"])
    new = [p.amount for p in ledger.payments if p.reference not in known]
    return sum(new, Decimal(0)) if new else None


def _open(session: Session) -> list[Approval]:
    return list(
        session.scalars(select(Approval).where(Approval.revoked_at.is_(None)).order_by(Approval.id))
    )


def approvals_in_force(
    session: Session, plan: CollectionsPlan, now: datetime
) -> dict[tuple[str, Kind], Approval]:
    """The approval in force per customer and kind (a query: lapsed ones are left out)."""
    return {
        (a.customer_id, approval_kind(a)): a
        for a in _open(session)
        if lapse_reason(a, plan, now) is None
    }


def lapse_approvals(
    session: Session, plan: CollectionsPlan, actor: str, now: datetime
) -> list[tuple[Approval, str]]:
    """Record each approval that no longer holds as revoked, with its reason, and audit it.

    Returns the approvals it lapsed and why. Taking an approval out of force
    changes nothing it authorised; it makes the lapse visible in the approval
    and in the audit log at the time it is noticed.
    """
    lapsed = []
    for approval in _open(session):
        reason = lapse_reason(approval, plan, now)
        if reason is not None:
            _end(session, approval, now, actor, "approval_lapsed", f"lapsed: {reason}", reason)
            lapsed.append((approval, reason))
    return lapsed


def valid_approvals(session: Session, plan: CollectionsPlan, now: datetime) -> dict[str, Approval]:
    """The suspension approval in force per customer (a query: changes nothing)."""
    return {
        c: a for (c, kind), a in approvals_in_force(session, plan, now).items() if kind == "suspend"
    }


def stop_renewal_approvals(
    session: Session, plan: CollectionsPlan, now: datetime
) -> dict[str, Approval]:
    """The ``stop_renewal`` approval in force per customer (a query: changes nothing)."""
    return {
        c: a
        for (c, kind), a in approvals_in_force(session, plan, now).items()
        if kind == "stop_renewal"
    }


def _end(
    session: Session,
    approval: Approval,
    now: datetime,
    actor: str,
    event: str,
    why: str,
    reason: str | None,
) -> None:
    """Take an approval out of force, saying why, in the approval and in the audit log."""
    approval.revoked_at, approval.revoked_reason = now, why
    audit.record(
        session,
        event,
        actor,
        customer_id=approval.customer_id,
        approval_id=approval.id,
        reason=reason,
    )


def _flag_ids(
    settings: Settings, session: Session, plan: CollectionsPlan, customers: set[str], now: datetime
) -> dict[tuple[str, str], int]:
    """The flag each approval hangs off, writing the flag history only for today's plan.

    Today's plan is recorded as the collections round records it. A plan of a
    past date is not: storing it would close today's stays and open new ones
    (new flag ids), and each customer would be sent its stage's notice again.
    An approval on a past plan hangs off the customer's current stay in that
    currency, or, with none open, off a closed record of the past plan's flag.
    """
    today = datetime.now(ZoneInfo(settings.schedule.timezone)).date()
    if plan.as_of == today:
        return store_flags(session, plan.flags, plan.as_of, now)
    ids = {
        (row.customer_id, row.currency): row.id
        for row in session.scalars(select(CollectionFlag).where(CollectionFlag.left_at.is_(None)))
    }
    for flag in plan.flags:
        if flag.customer_id not in customers or (flag.customer_id, flag.currency) in ids:
            continue
        row = CollectionFlag(
            customer_id=flag.customer_id,
            currency=flag.currency,
            action=flag.action,
            stage=flag.stage,
            overdue_amount=flag.overdue_amount,
            days_overdue=flag.days_overdue,
            reasons=list(flag.reasons),
            as_of=plan.as_of,
            entered_at=now,
            left_at=now,
        )
        session.add(row)
        session.flush()
        ids[(flag.customer_id, flag.currency)] = row.id
    return ids


def approve(
    settings: Settings,
    sessions: sessionmaker[Session],
    customers: list[str],
    as_of: date,
    actor: str,
    note: str | None = None,
    kind: Kind = "suspend",
) -> list[ApprovalView]:
    """Approve suspending (or stopping the renewals of) each customer; all or none.

    A customer the plan does not flag for it as of the date is an input error:
    the approval would authorise nothing the plan proposes.
    """
    # Checked before anything is stored: a refused approval leaves the database unchanged.
    plan = plan_collections(settings, sessions, as_of, store=False)
    now = datetime.now(UTC)
    wanted = "suspend" if kind == "suspend" else "follow_up or suspend"
    with sessions.begin() as session:
        ids = resolve_customers(session, customers)
        names = {cid: name for cid, name in session.execute(select(Customer.id, Customer.name))}
        problems = []
        for given, customer in ids.items():
            if not _basis(plan, customer, kind):
                actions = [f"{f.action} ({f.currency})" for f in plan.for_customer(customer)]
                problems.append(
                    f"{given}: not flagged {wanted} as of {as_of} "
                    f"(plan: {', '.join(actions) or 'nothing owed'}); nothing to approve"
                )
        if problems:
            raise InputError(problems[0] if len(problems) == 1 else "; ".join(problems))
        flag_ids = _flag_ids(settings, session, plan, set(ids.values()), now)
        lapse_approvals(session, plan, actor, now)
        in_force = approvals_in_force(session, plan, now)
        views = []
        for customer in dict.fromkeys(ids.values()):
            previous = in_force.get((customer, kind))
            basis = _basis(plan, customer, kind)
            approval = Approval(
                customer_id=customer,
                flag_id=flag_ids[(customer, min(basis))],
                approved_by=actor,
                note=note,
                approved_at=now,
                expires_at=now + timedelta(days=settings.collections.approval_valid_days),
                basis=basis,
                revoked_at=None,
            )
            session.add(approval)
            session.flush()
            if previous is not None:
                why = f"superseded by approval {approval.id}"
                _end(session, previous, now, actor, "approval_superseded", why, why)
            audit.record(
                session,
                "approved",
                actor,
                customer_id=customer,
                approval_id=approval.id,
                kind=kind,
                note=note,
                as_of=as_of.isoformat(),
                expires_at=approval.expires_at.isoformat(),
                basis=basis,
            )
            views.append(
                ApprovalView(
                    approval.id,
                    customer,
                    names.get(customer, customer),
                    actor,
                    approval.expires_at,
                    kind,
                )
            )
    return views


def revoke(
    sessions: sessionmaker[Session], customers: list[str], actor: str, reason: str | None
) -> list[str]:
    """Withdraw the approvals in force for these customers; the ids of those withdrawn."""
    now = datetime.now(UTC)
    withdrawn = []
    with sessions.begin() as session:
        ids = set(resolve_customers(session, customers).values())
        for approval in session.scalars(
            select(Approval).where(
                Approval.revoked_at.is_(None),
                Approval.expires_at > now,
                Approval.customer_id.in_(ids),
            )
        ):
            why = f"revoked: {reason or 'by admin'}"
            _end(session, approval, now, actor, "approval_revoked", why, reason)
            withdrawn.append(approval.customer_id)
    return withdrawn
