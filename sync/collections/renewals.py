"""The renewal guard: new-commerce terms a non-paying customer is about to renew, or may cancel.

A new-commerce subscription that auto-renews commits the partner to another
term; Microsoft bills a suspended one to its term's end. For customers at a
``follow_up`` or ``suspend`` stage this lists the subscriptions that auto-renew
within ``[collections] terms_ending_days`` (with the next term's cost: quantity
× unit price of the subscription's latest billed line) and those still inside
Microsoft's cancellation window (``cancellationAllowedUntilDate``: seven days
after a purchase or renewal, prorated refund), with the refund cancelling now
would get when the charge for today is known. pcsync never cancels: turning
auto-renew off (``stop_renewal``) is the action, approved and applied like a
suspension.

Sources (learn.microsoft.com): partner-center/developer/update-autorenew-for-an-
azure-marketplace-subscription (PATCH ``autoRenewEnabled``);
partner-center/developer/cancel-an-azure-marketplace-subscription and the "New
commerce experience cancellation policy" it refers to (seven days after a
purchase or renewal, prorated refund).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Numeric, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from connectors.partner_center.records import parse_datetime
from reconciliation.money import round_money
from sync.collections.azure import is_azure_plan
from sync.db.models import (
    Action,
    AuditEntry,
    LineItem,
    Subscription,
    SubscriptionStatusChange,
    UnbilledLineItem,
    _LineColumns,
)

__all__ = [
    "RenewalItem",
    "auto_renew_before_suspension",
    "renewal_guard",
    "renewals_stopped_by_pcsync",
]


@dataclass(frozen=True)
class RenewalItem:
    """One new-commerce subscription the renewal guard names, and why."""

    customer_id: str
    subscription_id: str
    name: str
    renews_on: date | None  # set when it auto-renews within the window
    cancellable_until: date | None  # set while Microsoft's cancellation window is open
    auto_renew: bool | None
    text: str


def _is_new_commerce(sub: Subscription) -> bool:
    return not is_azure_plan(sub.product_type, sub.billing_type) and (
        (sub.product_type or "").lower().endswith("nce") or ":" in (sub.offer_id or "")
    )


_CYCLE_MONTHS = {"monthly": 1, "annual": 12, "triennial": 36}


def _term_months(duration: str | None) -> int | None:
    """Months in an ISO 8601 term such as ``P1Y`` or ``P1M`` (None when not one of those)."""
    match = re.fullmatch(r"P(\d+)([YM])", duration or "")
    if match is None:
        return None
    return int(match[1]) * (12 if match[2] == "Y" else 1)


def _next_term_cost(session: Session, sub: Subscription) -> str:
    line = session.scalars(
        select(LineItem)
        .where(
            LineItem.subscription_id == sub.id,
            # not a credit nor free; SQLite stores amounts as text: compared as numbers
            cast(LineItem.unit_price, Numeric()) > 0,
            LineItem.charge_end_date.is_not(None),  # NULLs sort apart on SQLite and PostgreSQL
        )
        .order_by(LineItem.charge_end_date.desc(), LineItem.id.desc())
        .limit(1)
    ).first()
    if line is None or line.unit_price is None:
        return "next term's cost unknown: no billed line of this subscription yet"
    c = line.currency
    cycle = (sub.billing_cycle or "").lower()
    per_period = round_money(Decimal(sub.quantity) * line.unit_price, c)
    text = (
        f"next term {sub.quantity} × {line.unit_price} {c} = {per_period} {c} per "
        f"{cycle or 'billing'} period"
    )
    term = sub.raw.get("renewalTermDuration") or sub.term_duration
    months = _term_months(term if isinstance(term, str) else None)
    if months is not None and cycle in _CYCLE_MONTHS and months % _CYCLE_MONTHS[cycle] == 0:
        periods = months // _CYCLE_MONTHS[cycle]
        text += f", {round_money(per_period * periods, c)} {c} for the {term} term"
    return f"{text} (unit price of the latest billed line, invoice {line.invoice_id})"


def _refund(session: Session, sub: Subscription, as_of: date) -> str:
    found: _LineColumns | None = None
    models: tuple[type[UnbilledLineItem] | type[LineItem], ...] = (UnbilledLineItem, LineItem)
    for model in models:
        found = session.scalars(  # type: ignore[assignment]
            select(model)
            .where(
                model.subscription_id == sub.id,
                model.charge_start_date <= as_of,
                or_(model.charge_end_date.is_(None), model.charge_end_date >= as_of),
                cast(model.subtotal, Numeric()) > 0,  # text on SQLite: as a number
            )
            .order_by(model.id.desc())
            .limit(1)
        ).first()
        if found is not None:
            break
    if found is None or found.charge_start_date is None or found.charge_end_date is None:
        return "the refund cannot be derived: no billed or unbilled charge covers today"
    days = (found.charge_end_date - found.charge_start_date).days + 1
    left = (found.charge_end_date - as_of).days + 1
    refund = round_money(found.subtotal * left / days, found.currency)
    return (
        f"cancelling now would refund about {refund} {found.currency} (prorated: {left} of "
        f"{days} days of a {found.subtotal} {found.currency} charge)"
    )


def renewal_guard(
    session: Session, customers: set[str], as_of: date, within_days: int
) -> list[RenewalItem]:
    """The new-commerce subscriptions of these customers that renew soon or may be cancelled."""
    items = []
    for sub in session.scalars(
        select(Subscription)
        .where(
            Subscription.customer_id.in_(customers),
            Subscription.status == "active",
            Subscription.delisted_at.is_(None),
        )
        .order_by(Subscription.customer_id, Subscription.id)
    ):
        if not _is_new_commerce(sub):
            continue
        name = sub.friendly_name or sub.offer_name or sub.id
        end = sub.commitment_end_date.date() if sub.commitment_end_date else None
        renews = (
            end
            if sub.auto_renew and end is not None and as_of <= end <= as_of + timedelta(within_days)
            else None
        )
        until = parse_datetime(sub.raw.get("cancellationAllowedUntilDate"))
        window = until.date() if until is not None and until.date() >= as_of else None
        parts = []
        if renews is not None:
            parts.append(
                f"auto-renews on {renews + timedelta(days=1)} (term ends {renews}, in "
                f"{(renews - as_of).days} days): {_next_term_cost(session, sub)}"
            )
        if window is not None:
            parts.append(
                f"inside Microsoft's cancellation window until {window}: "
                f"{_refund(session, sub, as_of)}"
            )
        if parts:
            items.append(
                RenewalItem(
                    sub.customer_id,
                    sub.id,
                    name,
                    renews,
                    window,
                    sub.auto_renew,
                    f"renewal guard: {name} ({sub.id}) " + "; ".join(parts),
                )
            )
    return items


_ENDED = ("expired", "deleted")


def renewals_stopped_by_pcsync(session: Session) -> dict[str, list[str]]:
    """Per customer, the subscriptions whose auto-renew pcsync turned off and that has
    stayed off since.

    pcsync's when its latest auto-renew change that took effect is its own
    ``stop_renewal``; turning it back on (``restore_renewal``) ends it, and so
    does the end of the subscription. Ownership follows Microsoft's state, as
    for suspensions: any auto-renew on that a sync has seen since pcsync turned
    it off (someone turned it on — even if it, or someone, turned it off again
    later) ends it; that off is someone else's, and stays off.
    """
    latest = (
        select(Action.subscription_id, func.max(Action.id).label("last"))
        .where(
            Action.result == "succeeded",
            Action.action.in_(("stop_renewal", "restore_renewal")),
        )
        .group_by(Action.subscription_id)
        .subquery()
    )
    history = SubscriptionStatusChange
    turned_on_since = exists().where(
        history.subscription_id == Action.subscription_id,
        history.observed_at > Action.requested_at,
        history.new_auto_renew.is_(True),
    )
    rows = session.execute(
        select(Action.customer_id, Action.subscription_id)
        .join(latest, Action.id == latest.c.last)
        .join(Subscription, Subscription.id == Action.subscription_id)
        .where(
            Action.action == "stop_renewal",
            Subscription.auto_renew.is_(False),
            Subscription.status.not_in(_ENDED),
            ~turned_on_since,
        )
        .order_by(Action.customer_id, Action.subscription_id)
    )
    found: dict[str, list[str]] = {}
    for customer, subscription in rows:
        found.setdefault(customer, []).append(subscription)
    return found


def auto_renew_before_suspension(session: Session, subscription_id: str) -> bool | None:
    """Whether auto-renew was on just before pcsync's latest suspension of this
    subscription (recorded with the suspension's audit entry), None when unknown."""
    for details in session.scalars(
        select(AuditEntry.details)
        .where(AuditEntry.event == "suspend", AuditEntry.subscription_id == subscription_id)
        .order_by(AuditEntry.seq.desc())
    ):
        if details.get("result") == "succeeded":
            before = details.get("auto_renew_before")
            return before if isinstance(before, bool) else None
    return None
