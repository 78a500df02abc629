"""Azure plans in collections: what is being consumed, and what Microsoft lets a partner do.

An Azure plan is usage-based: its cost is the consumption of the Azure
subscriptions (entitlements) inside it, uncapped, billed after the month. It
cannot be suspended through the subscription API while any Azure
subscription in it is active (Microsoft error 900115). Microsoft documents
separate operations for those Azure subscriptions ("Azure spending": list,
cancel, reactivate), but cancelling is not suspending — the documented use is
compromise or abuse — so pcsync never cancels anything by itself: it shows
what each Azure subscription has consumed since the last invoice and says
what the partner can do by hand.

Sources (learn.microsoft.com):
  partner-center/developer/get-a-list-of-azure-entitlements-for-subscription
  partner-center/developer/cancel-an-azure-subscription
  rest/api/partner-center/azure-spending/cancel-an-azure-entitlement
  rest/api/partner-center/azure-spending/reactivate-an-azure-entitlement
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconciliation.money import round_money
from sync.db.models import Subscription, UnbilledLineItem

__all__ = [
    "PERMANENT_REFUSALS",
    "AzurePlanView",
    "AzureUse",
    "azure_plans",
    "is_azure_plan",
    "plan_notes",
]

# Microsoft's refusals that no rerun can turn into a success: the partner must act first.
PERMANENT_REFUSALS = frozenset(
    {
        "900115",  # Azure plan with an active Azure subscription cannot be suspended
        "2011",  # a deleted subscription cannot be updated
        "800040",  # asset status cannot be changed from … to …
        "800091",  # cannot update a subscription with suspended status
        "800096",  # cannot update the status for this subscription
    }
)

_DOCS = "learn.microsoft.com/en-us/partner-center/developer/cancel-an-azure-subscription"


@dataclass(frozen=True)
class AzureUse:
    """What one Azure subscription of a plan consumed since the last invoice (unbilled)."""

    entitlement_id: str | None  # None: the lines do not name the Azure subscription
    name: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class AzurePlanView:
    """A customer's Azure plan with its Azure subscriptions' unbilled consumption."""

    customer_id: str
    subscription_id: str
    name: str
    status: str
    uses: tuple[AzureUse, ...]


def is_azure_plan(product_type: str | None, billing_type: str | None) -> bool:
    """An Azure plan: Microsoft's ``productType`` Azure, billed by usage."""
    return (product_type or "").lower() == "azure" or (
        (billing_type or "").lower() == "usage" and product_type is None
    )


def azure_plans(session: Session, customers: Iterable[str]) -> dict[str, list[AzurePlanView]]:
    """Per customer, its Azure plans and what each Azure subscription consumed, unbilled."""
    wanted = set(customers)
    if not wanted:
        return {}
    plans = [
        s
        for s in session.scalars(
            select(Subscription)
            .where(Subscription.customer_id.in_(wanted))
            .order_by(Subscription.customer_id, Subscription.id)
        )
        if is_azure_plan(s.product_type, s.billing_type)
    ]
    if not plans:
        return {}
    used: dict[str, dict[tuple[str | None, str], Decimal]] = defaultdict(
        lambda: defaultdict(Decimal)
    )
    names: dict[str | None, str] = {}
    rows = session.execute(
        select(
            UnbilledLineItem.subscription_id,
            UnbilledLineItem.currency,
            UnbilledLineItem.subtotal,
            UnbilledLineItem.__table__.c.entitlement_id,
            UnbilledLineItem.__table__.c.entitlement_description,
        )
        .where(UnbilledLineItem.subscription_id.in_([p.id for p in plans]))
        .order_by(UnbilledLineItem.id)
    )
    for sub_id, currency, subtotal, entitlement, description in rows:
        ident, name = (str(entitlement).lower() if entitlement else None), (description or None)
        used[sub_id or ""][(ident, currency)] += subtotal
        if name:
            names[ident] = name
    found: dict[str, list[AzurePlanView]] = defaultdict(list)
    for p in plans:
        uses = tuple(
            AzureUse(
                ident, names.get(ident) or ident or "(Azure subscription not named)", amount, cur
            )
            for (ident, cur), amount in sorted(
                used.get(p.id, {}).items(), key=lambda i: (i[0][0] or "", i[0][1])
            )
        )
        found[p.customer_id].append(
            AzurePlanView(
                p.customer_id, p.id, p.friendly_name or p.offer_name or p.id, p.status, uses
            )
        )
    return dict(found)


def plan_notes(view: AzurePlanView) -> list[str]:
    """What the plan and the dry run say about one Azure plan: consumption, then what to do."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for use in view.uses:
        totals[use.currency] += use.amount
    spent = ", ".join(f"{round_money(a, c)} {c}" for c, a in sorted(totals.items())) or "nothing"
    notes = [
        f"Azure plan {view.name} ({view.subscription_id}, {view.status}): {len(view.uses)} "
        f"Azure subscription(s) with {spent} unbilled consumption since the last invoice"
    ]
    notes.extend(
        f"  Azure subscription {use.name}"
        + (f" ({use.entitlement_id})" if use.entitlement_id else "")
        + f": {round_money(use.amount, use.currency)} {use.currency} unbilled"
        for use in view.uses
    )
    notes.append(
        "  an Azure plan cannot be suspended through the subscription API while any Azure "
        "subscription in it is active (Microsoft error 900115), and pcsync never cancels "
        "anything by itself; consumption goes on being billed to the partner"
    )
    notes.append(
        "  by hand, the partner may cancel an Azure subscription in the plan (Partner Center "
        "portal, or POST /v1/customers/{customer}/subscriptions/{plan}/azureEntitlements/"
        "{azure subscription}/cancel with a cancellationReason; Microsoft documents it for "
        "compromise or abuse, and …/reactivate undoes it), then suspend the plan: pcsync "
        f"suspends it once no Azure subscription in it is active ({_DOCS})"
    )
    return notes
