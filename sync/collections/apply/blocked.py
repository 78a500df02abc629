"""Subscriptions an apply must not send: an Azure plan Microsoft would refuse, or a change
Microsoft already refused for good under the same approval.

Microsoft refuses to suspend an Azure plan through the subscription API while
any Azure subscription (entitlement) in it is active (403, 900115); it
documents cancel and reactivate for those, not suspend, and pcsync never
cancels. Sending either again would fail the same way for ever, so each is
listed as waiting, with what the partner can do by hand, instead.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.partner_center.resources import AzureEntitlement
from sync.collections.apply.model import Verb
from sync.collections.azure import azure_plans, plan_notes
from sync.collections.plan import CollectionsPlan, SubscriptionView
from sync.db.models import Action

__all__ = ["blocked", "refused"]


def blocked(
    session: Session,
    plan: CollectionsPlan,
    subs: dict[str, list[SubscriptionView]],
    approvals: dict[str, int],
    entitlements: Callable[[str, str], list[AzureEntitlement]] | None,
) -> dict[str, str]:
    """Subscriptions of approved customers that a suspension cannot reach, and why.

    An Azure plan with an active Azure subscription (read live when
    ``entitlements`` is given), or one Microsoft already refused for good under
    the same approval and nothing shows that has changed: sending it again
    would fail the same way for ever.
    """
    customers = {
        f.customer_id for f in plan.flags if f.action == "suspend" and f.customer_id in approvals
    }
    plans = azure_plans(session, customers)
    refused_for_good = refused(session, approvals)
    found: dict[str, str] = {}
    for customer in sorted(customers):
        for view in plans.get(customer, []):
            notes = " / ".join(n.strip() for n in plan_notes(view))
            if view.status != "active":
                continue
            if entitlements is not None:
                active = [
                    e for e in entitlements(customer, view.subscription_id) if e.status == "active"
                ]
                if active:
                    names = ", ".join(f"{e.name} ({e.id})" for e in active)
                    found[view.subscription_id] = (
                        f"Azure plan not suspended: Azure subscription(s) still active: {names}. "
                        + notes
                    )
                continue
            if view.subscription_id in refused_for_good:
                found[view.subscription_id] = f"{refused_for_good[view.subscription_id]}. {notes}"
        azure = {v.subscription_id for v in plans.get(customer, [])}
        for sub in subs.get(customer, []):
            if sub.id in refused_for_good and sub.id not in azure and sub.status == "active":
                found[sub.id] = refused_for_good[sub.id]
    return found


def refused(session: Session, approvals: dict[str, int], verb: Verb = "suspend") -> dict[str, str]:
    """Changes Microsoft refused for good under the approval still in force."""
    if not approvals:
        return {}
    rows = session.execute(
        select(Action.subscription_id, Action.error, Action.requested_at)
        .where(
            Action.action == verb,
            Action.result == "refused",
            Action.approval_id.in_(list(approvals.values())),
        )
        .order_by(Action.id)
    )
    return {
        sub: f"refused by Microsoft on {at:%Y-%m-%d} ({error}); a rerun would be refused the "
        "same way, so it is not sent again under this approval"
        for sub, error, at in rows
    }
