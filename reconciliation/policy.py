"""The collections policy: which customers to follow up, suspend or reactivate, and why.

A customer (per currency) is at the last stage whose ``days_overdue`` it has
reached and whose minimum amount its overdue amount reaches — and only if
something is overdue at all. Exempt customers are never flagged beyond
``none``; a customer may follow another named policy. A customer whose
subscriptions pcsync suspended and who is no longer at a suspend stage is
flagged ``reactivate``. A suspension's reasons say what it costs: new-commerce
subscriptions stay billed while suspended, and one still suspended at the end
of its term expires. Pure: ledgers, terms and settings in, flags out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from reconciliation.ledger import CustomerLedger
from reconciliation.money import round_money

__all__ = ["PRESSED", "Flag", "Policy", "Stage", "Term", "plan"]

Action = Literal["none", "follow_up", "suspend", "reactivate"]
# The actions of a customer who has not paid: collections is pressing it.
PRESSED: tuple[Action, ...] = ("follow_up", "suspend")


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of the policy: from ``days_overdue`` on, if at least ``min_amount`` is overdue."""

    name: str
    days_overdue: int
    action: Literal["follow_up", "suspend"]
    min_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """The partner's collections policy."""

    stages: Sequence[Stage]
    min_overdue_amount: Decimal = Decimal(0)
    exempt_customers: frozenset[str] = frozenset()
    # Customers who follow another policy, by customer id.
    per_customer: Mapping[str, Policy] = field(default_factory=dict)
    # A suspension's reasons name the subscriptions whose term ends within this many days.
    terms_ending_days: int = 30

    def for_customer(self, customer_id: str) -> Policy:
        """The policy this customer follows."""
        return self.per_customer.get(customer_id, self)


@dataclass(frozen=True, slots=True)
class Term:
    """An active subscription's term, for what a suspension would cost."""

    subscription_id: str
    name: str
    term_end: date | None


@dataclass(frozen=True, slots=True)
class Flag:
    """What to do about one customer in one currency, with the evidence."""

    customer_id: str
    customer_name: str
    currency: str
    action: Action
    stage: str | None
    overdue_amount: Decimal
    days_overdue: int
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The flag as in ``pcsync collections plan --json``."""
        return {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "currency": self.currency,
            "action": self.action,
            "stage": self.stage,
            "overdue_amount": str(round_money(self.overdue_amount, self.currency)),
            "days_overdue": self.days_overdue,
            "reasons": list(self.reasons),
        }


def _stage(policy: Policy, ledger: CustomerLedger) -> Stage | None:
    overdue = ledger.overdue_amount
    if overdue <= 0:
        return None
    reached = None
    for stage in policy.stages:
        minimum = policy.min_overdue_amount if stage.min_amount is None else stage.min_amount
        if stage.days_overdue <= ledger.days_overdue and minimum <= overdue:
            reached = stage
    return reached


def _evidence(ledger: CustomerLedger) -> list[str]:
    c = ledger.currency
    reasons = [
        f"{charge.invoice_id}: {round_money(part, c)} {c} of {round_money(charge.amount, c)} "
        f"unpaid, due {charge.due_date} ({(ledger.as_of - charge.due_date).days} days overdue)"
        for charge, part in ledger.overdue_charges()[:5]
    ]
    more = len(ledger.overdue_charges()) - 5
    if more > 0:
        reasons.append(f"and {more} more overdue charge(s)")
    reasons.append(
        f"paid {round_money(ledger.paid, c)} {c} of {round_money(ledger.charged, c)} {c} "
        f"charged as of {ledger.as_of}"
    )
    return reasons


def _suspension_cost(ledger: CustomerLedger, terms: Sequence[Term], within_days: int) -> list[str]:
    c = ledger.currency
    latest = ledger.charges[-1] if ledger.charges else None
    monthly = round_money(latest.cost, c) if latest else Decimal(0)
    reasons = [
        f"suspending does not stop Microsoft's bill: new-commerce subscriptions stay billed "
        f"(about {monthly} {c} a month, the latest invoice's cost) and auto-renew is turned off"
    ]
    for term in sorted(terms, key=lambda t: (t.term_end or date.max, t.subscription_id)):
        if term.term_end is None:
            continue
        days = (term.term_end - ledger.as_of).days
        if 0 <= days <= within_days:
            reasons.append(
                f"{term.name} ({term.subscription_id}): term ends {term.term_end} "
                f"(in {days} days); still suspended then, it expires instead of renewing"
            )
    return reasons


def plan(
    ledgers: Iterable[CustomerLedger],
    policy: Policy,
    names: Mapping[str, str],
    suspended_by_pcsync: Iterable[str] = (),
    terms: Mapping[str, Sequence[Term]] | None = None,
) -> list[Flag]:
    """One flag per customer and currency with anything owed, overdue, or to reactivate.

    ``terms`` lists each customer's active subscriptions, for the cost of suspending.
    """
    terms = terms or {}
    to_reactivate = set(suspended_by_pcsync)
    flags = []
    for ledger in ledgers:
        customer = ledger.customer_id
        owes = ledger.balance > 0
        if not owes and customer not in to_reactivate:
            continue
        own = policy.for_customer(customer)
        stage = _stage(own, ledger)
        action: Action = stage.action if stage else "none"
        reasons = (
            _evidence(ledger)
            if ledger.overdue_amount > 0
            else [
                f"{round_money(ledger.balance, ledger.currency)} {ledger.currency} owed, "
                "nothing overdue yet"
            ]
        )
        if customer in policy.exempt_customers:
            action, stage, reasons = "none", None, ["exempt", *reasons]
        elif customer in to_reactivate and action != "suspend":
            action = "reactivate"
            reasons = [
                "pcsync suspended this customer's subscriptions; no longer at a suspend stage",
                *reasons,
            ]
        elif action == "suspend":
            reasons.extend(_suspension_cost(ledger, terms.get(customer, ()), own.terms_ending_days))
        flags.append(
            Flag(
                customer,
                names.get(customer, customer),
                ledger.currency,
                action,
                stage.name if stage else None,
                ledger.overdue_amount,
                ledger.days_overdue,
                tuple(reasons),
            )
        )
    return flags
