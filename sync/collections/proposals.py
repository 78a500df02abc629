"""What ``collections plan`` proposes beside its flags: approvals in force, auto-renew changes.

A query, for the plan's text and JSON: for each customer, the approvals in
force (of kind ``suspend`` or ``stop_renewal``; a lapsed one is not, and is
not revoked here either); the ``stop_renewal`` actions — the new-commerce
subscriptions of a customer at a follow_up or suspend stage that auto-renew
within ``[collections] terms_ending_days`` — each with its approval or the
command that gives one; and the ``restore_renewal`` actions — auto-renew
pcsync turned off and still owns, of customers no longer at such a stage —
which need no approval. ``collections apply`` makes them; this changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.policy import PRESSED
from sync.collections.approvals import Kind, approval_kind, approvals_in_force
from sync.collections.plan import CollectionsPlan, subscriptions_by_customer
from sync.collections.renewals import renewal_guard, renewals_stopped_by_pcsync
from sync.config import Settings
from sync.db.models import Approval, Customer

__all__ = ["ApprovalNote", "PlanProposals", "RenewalAction", "plan_proposals"]


@dataclass(frozen=True)
class ApprovalNote:
    """An approval in force, as the plan shows it."""

    id: int
    customer_id: str
    kind: Kind
    approved_by: str
    expires_at: datetime

    @classmethod
    def of(cls, approval: Approval) -> ApprovalNote:
        """The note of a stored approval."""
        return cls(
            approval.id,
            approval.customer_id,
            approval_kind(approval),
            approval.approved_by,
            approval.expires_at,
        )

    def text(self) -> str:
        """As a plan line ends."""
        return (
            f"approved by {self.approved_by} until {self.expires_at:%Y-%m-%d %H:%M} UTC "
            f"(approval {self.id})"
        )

    def as_json(self) -> dict[str, Any]:
        """As in ``collections plan --json``."""
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "kind": self.kind,
            "approved_by": self.approved_by,
            "expires_at": self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class RenewalAction:
    """One auto-renew change the plan proposes (``stop_renewal`` or ``restore_renewal``)."""

    action: str
    customer_id: str
    customer_name: str
    subscription_id: str
    subscription_name: str
    term_ends: date | None
    approval: ApprovalNote | None
    why: str

    def needs(self) -> str:
        """What stands between this action and ``collections apply --apply``."""
        if self.action == "restore_renewal":
            return "no approval needed"
        if self.approval is not None:
            return self.approval.text()
        return f"not approved: pcsync collections approve {self.customer_id} --stop-renewal"

    def as_json(self) -> dict[str, Any]:
        """As in ``collections plan --json``."""
        return {
            "action": self.action,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "subscription_id": self.subscription_id,
            "subscription_name": self.subscription_name,
            "term_ends": self.term_ends.isoformat() if self.term_ends else None,
            "approval": self.approval.as_json() if self.approval else None,
            "why": self.why,
        }


@dataclass(frozen=True)
class PlanProposals:
    """The approvals in force and the auto-renew changes of a plan."""

    approvals: dict[tuple[str, Kind], ApprovalNote]
    renewals: list[RenewalAction]

    def approval(self, customer_id: str, kind: Kind = "suspend") -> ApprovalNote | None:
        """The customer's approval of this kind in force, if any."""
        return self.approvals.get((customer_id, kind))

    def as_json(self) -> dict[str, Any]:
        """The ``approvals``, ``stop_renewal`` and ``restore_renewal`` of the plan's JSON."""
        return {
            "approvals": [a.as_json() for _, a in sorted(self.approvals.items())],
            "stop_renewal": [r.as_json() for r in self.renewals if r.action == "stop_renewal"],
            "restore_renewal": [
                r.as_json() for r in self.renewals if r.action == "restore_renewal"
            ],
        }


def plan_proposals(
    settings: Settings, sessions: sessionmaker[Session], plan: CollectionsPlan, now: datetime
) -> PlanProposals:
    """What the plan proposes beside its flags, read from the database (changes nothing)."""
    pressed = {f.customer_id for f in plan.flags if f.action in PRESSED}
    with sessions() as session:
        approvals = {
            key: ApprovalNote.of(a) for key, a in approvals_in_force(session, plan, now).items()
        }
        guard = renewal_guard(session, pressed, plan.as_of, settings.collections.terms_ending_days)
        stopped = renewals_stopped_by_pcsync(session)
        views = {s.id: s for rows in subscriptions_by_customer(session).values() for s in rows}
        names = {cid: name for cid, name in session.execute(select(Customer.id, Customer.name))}
    names |= {f.customer_id: f.customer_name for f in plan.flags}
    renewals = []
    for item in guard:
        if item.renews_on is None or item.auto_renew is not True:
            continue
        if item.customer_id in plan.delisted:
            continue  # no longer listed by Microsoft: pcsync changes none of its subscriptions
        renewals.append(
            RenewalAction(
                "stop_renewal",
                item.customer_id,
                names.get(item.customer_id, item.customer_id),
                item.subscription_id,
                item.name,
                item.renews_on,
                approvals.get((item.customer_id, "stop_renewal")),
                f"auto-renews on {item.renews_on + timedelta(days=1)}; the customer is at a "
                "follow_up or suspend stage",
            )
        )
    for customer, sub_ids in sorted(stopped.items()):
        if customer in pressed or customer in plan.delisted:
            continue
        reactivating = any(f.action == "reactivate" for f in plan.for_customer(customer))
        for sub_id in sub_ids:
            view = views.get(sub_id)
            if view is None or (view.status != "active" and not reactivating):
                continue  # Microsoft refuses auto-renew changes on a suspended one (800091)
            renewals.append(
                RenewalAction(
                    "restore_renewal",
                    customer,
                    names.get(customer, customer),
                    sub_id,
                    view.name,
                    view.term_end,
                    None,
                    "pcsync turned auto-renew off and it has stayed off; the customer is no "
                    "longer at a follow_up or suspend stage",
                )
            )
    return PlanProposals(approvals, renewals)
