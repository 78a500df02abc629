"""Verbs, the changes an apply makes, the plan of a batch and its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from connectors.partner_center import Subscription, SubscriptionStatus
from reconciliation.errors import InputError
from reconciliation.policy import PRESSED
from sync.collections.plan import CollectionsPlan

__all__ = [
    "PRESSED",
    "RENEW",
    "TARGET",
    "VERBS",
    "ApplyOutcome",
    "ApplyPlan",
    "Change",
    "Verb",
    "Waiting",
    "reached",
    "renew_state",
    "require_today",
    "state_of",
]

Verb = Literal["suspend", "reactivate", "stop_renewal", "restore_renewal"]
TARGET = {"suspend": SubscriptionStatus.SUSPENDED, "reactivate": SubscriptionStatus.ACTIVE}
RENEW = {"stop_renewal": False, "restore_renewal": True}  # auto-renew wanted
VERBS: tuple[Verb, ...] = ("suspend", "reactivate", "stop_renewal", "restore_renewal")


def renew_state(enabled: bool | None) -> str:
    """Auto-renew as an action row's before/after state."""
    if enabled is None:
        return "auto-renew n/a"
    return "auto-renew on" if enabled else "auto-renew off"


def reached(verb: str, sub: Subscription) -> bool:
    """Whether the subscription, as read, is where this verb takes it."""
    if verb in RENEW:
        return sub.auto_renew is RENEW[verb]
    return sub.status is TARGET[verb]


def state_of(verb: str, sub: Subscription) -> str:
    """What this verb changes, as an action row's before/after state."""
    return renew_state(sub.auto_renew) if verb in RENEW else sub.status.value


@dataclass(frozen=True)
class Change:
    """One subscription to move to another status, and why."""

    customer_id: str
    customer_name: str
    subscription_id: str
    subscription_name: str
    action: Verb
    status_now: str
    approval_id: int | None
    why: str
    auto_renew_now: bool | None = None  # as mirrored: kept with a suspension, to restore


@dataclass(frozen=True)
class Waiting:
    """A customer the plan would suspend but this apply will not touch, and why."""

    customer_id: str
    customer_name: str
    why: str


@dataclass(frozen=True)
class ApplyPlan:
    """Everything an apply would do, decided before anything is sent."""

    as_of: date
    changes: list[Change]
    waiting: list[Waiting]
    interrupted: int  # attempts of an earlier run that never heard back
    suspend_customers: int
    active_customers: int
    refusal: str | None
    stop_renewal_customers: int = 0
    # What it was decided from: executing it first records the approvals that lapsed
    # under this very plan and moment (a query decided the batch; nothing was revoked).
    collections: CollectionsPlan | None = field(default=None, repr=False, compare=False)
    decided_at: datetime | None = None


@dataclass
class ApplyOutcome:
    """What an executed apply did."""

    run_id: int
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[Change, str]] = field(default_factory=list)
    refusals: list[tuple[Change, str]] = field(default_factory=list)  # refused for good


def require_today(as_of: date, today: date) -> None:
    """Refuse to change anything at Microsoft for any plan date but today.

    A mistyped year would otherwise suspend customers with nothing overdue
    today; dry runs may look at any date.
    """
    if as_of != today:
        when = "past" if as_of < today else "future"
        raise InputError(
            f"--as-of {as_of} is in the {when}: --apply acts on today ({today}) only; "
            "leave out --as-of (dry runs may use any date)"
        )
