"""The collections plan: the policy applied to today's ledgers, with the flags kept as history.

Every plan that is stored updates ``collection_flags``: a customer's open flag
(per currency) is kept while its action and stage stay the same, and closed
(``left_at``) when they change or the customer drops out of the plan. So the
table answers "when did this customer enter and leave each stage", and a
flag's id names one stay at one stage — approvals and notices hang off it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import ConfigError
from reconciliation.ledger import CustomerLedger
from reconciliation.money import round_money
from reconciliation.policy import PRESSED, Flag, Policy, Stage, Term, plan
from reconciliation.result import reconcile
from sync.collections.azure import azure_plans, plan_notes
from sync.collections.holds import held_back, holds_in_force, with_holds
from sync.collections.renewals import renewal_guard
from sync.config import CollectionsSettings, CollectionStage, Settings
from sync.db.models import (
    Action,
    CollectionFlag,
    Customer,
    Subscription,
    SubscriptionStatusChange,
)
from sync.reconcile import load_inputs
from sync.runtime.gcpause import cycle_collection_paused

__all__ = [
    "CollectionsPlan",
    "FlagStay",
    "SubscriptionView",
    "delisted_customers",
    "flag_history",
    "plan_collections",
    "policy_from_settings",
    "store_flags",
    "subscriptions_by_customer",
    "suspended_by_pcsync",
]

Key = tuple[str, str]  # customer id, currency
_ENDED = ("expired", "deleted")  # a subscription in these states cannot be reactivated


@dataclass(frozen=True)
class CollectionsPlan:
    """Flags as of a date, the ledgers behind them, and the stored flag ids."""

    as_of: date
    flags: list[Flag]
    ledgers: dict[Key, CustomerLedger]
    flag_ids: dict[Key, int]
    # Customers Microsoft no longer lists, and since when: pcsync changes none of theirs.
    delisted: dict[str, datetime] = field(default_factory=dict)
    # Customers a hold keeps from a follow_up or suspend stage: flagged none, yet unpaid.
    held: frozenset[str] = frozenset()

    def flag(self, customer_id: str, currency: str) -> Flag | None:
        """This customer's flag in this currency, if it has one."""
        return next(
            (f for f in self.flags if (f.customer_id, f.currency) == (customer_id, currency)),
            None,
        )

    def for_customer(self, customer_id: str) -> list[Flag]:
        """This customer's flags, one per currency."""
        return [f for f in self.flags if f.customer_id == customer_id]


def _stages(stages: tuple[CollectionStage, ...]) -> list[Stage]:
    return [Stage(s.name, s.days_overdue, s.action, s.min_amount) for s in stages]


def policy_from_settings(settings: Settings) -> Policy:
    """The validated ``[collections]`` section as a policy, with named policies and overrides."""
    section: CollectionsSettings = settings.collections
    named = {
        name: Policy(
            stages=_stages(p.stages),
            min_overdue_amount=(
                section.min_overdue_amount if p.min_overdue_amount is None else p.min_overdue_amount
            ),
            terms_ending_days=section.terms_ending_days,
        )
        for name, p in section.policies.items()
    }
    exempt = {c.lower() for c in section.exempt_customers}
    exempt |= {c.lower() for c, o in section.overrides.items() if o.exempt}
    return Policy(
        stages=_stages(section.stages),
        min_overdue_amount=section.min_overdue_amount,
        exempt_customers=frozenset(exempt),
        per_customer={
            customer.lower(): named[o.policy]
            for customer, o in section.overrides.items()
            if o.policy is not None
        },
        terms_ending_days=section.terms_ending_days,
    )


def _check_customers_known(session: Session, section: CollectionsSettings) -> None:
    # A mistyped exempt id would leave the customer it meant unprotected: refuse it.
    named = section.customer_ids()
    if not named:
        return
    known = set(session.scalars(select(Customer.id)))
    unknown = sorted(named - known)
    if known and unknown:
        raise ConfigError(
            f"[collections] names customer id(s) not in Partner Center: {', '.join(unknown)}; "
            "fix exempt_customers / [collections.overrides] (ids are customer tenant ids)"
        )


def suspended_by_pcsync(session: Session) -> dict[str, list[str]]:
    """Per customer, the subscriptions pcsync itself suspended and has not reactivated.

    A subscription is pcsync's when its latest change was a suspension that
    succeeded. A suspension that found it already suspended ("unchanged")
    changes nothing — someone else's suspension stays theirs, pcsync's stays
    pcsync's — while a reactivation, made or found already done, ends it. So
    does the end of the subscription: one that expired while suspended (new
    commerce, at the end of its term) or was deleted cannot be reactivated.

    Ownership follows Microsoft's state: it lasts only while the subscription
    has stayed suspended since pcsync's suspension. Any other status a sync has
    seen since (an admin reactivated it, even if it was suspended again later)
    ends it — that suspension is someone else's.
    """
    decisive = or_(
        Action.result == "succeeded",
        and_(Action.result == "unchanged", Action.action == "reactivate"),
    )
    latest = (
        select(Action.subscription_id, func.max(Action.id).label("last"))
        .where(decisive, Action.action.in_(("suspend", "reactivate")))  # not auto-renew ones
        .group_by(Action.subscription_id)
        .subquery()
    )
    history = SubscriptionStatusChange
    changed_since = exists().where(
        history.subscription_id == Action.subscription_id,
        history.observed_at > Action.requested_at,
        history.new_status != "suspended",
    )
    rows = session.execute(
        select(Action.customer_id, Action.subscription_id)
        .join(latest, Action.id == latest.c.last)
        .join(Subscription, Subscription.id == Action.subscription_id, isouter=True)
        .where(
            Action.action == "suspend",
            Action.result == "succeeded",
            or_(Subscription.status.is_(None), Subscription.status.not_in(_ENDED)),
            Subscription.delisted_at.is_(None),  # Microsoft no longer lists it: not ours
            ~changed_since,
        )
        .order_by(Action.customer_id, Action.subscription_id)
    )
    found: dict[str, list[str]] = defaultdict(list)
    for customer, subscription in rows:
        found[customer].append(subscription)
    return dict(found)


@dataclass(frozen=True)
class SubscriptionView:
    """A mirrored subscription as collections shows and changes it."""

    id: str
    customer_id: str
    name: str
    status: str
    term_end: date | None
    auto_renew: bool | None = None


def subscriptions_by_customer(session: Session) -> dict[str, list[SubscriptionView]]:
    """Every mirrored subscription Microsoft still lists, per customer, in a stable order."""
    found: dict[str, list[SubscriptionView]] = defaultdict(list)
    rows = session.execute(
        select(
            Subscription.id,
            Subscription.customer_id,
            Subscription.friendly_name,
            Subscription.offer_name,
            Subscription.status,
            Subscription.commitment_end_date,
            Subscription.auto_renew,
        )
        .where(Subscription.delisted_at.is_(None))  # no longer listed: nothing to change
        .order_by(Subscription.customer_id, Subscription.id)
    )
    for sub_id, customer, friendly, offer, status, end, renew in rows:
        found[customer].append(
            SubscriptionView(
                sub_id,
                customer,
                friendly or offer or sub_id,
                status,
                end.date() if end else None,
                renew,
            )
        )
    return dict(found)


def _terms(session: Session) -> dict[str, list[Term]]:
    return {
        customer: [Term(s.id, s.name, s.term_end) for s in subs if s.status == "active"]
        for customer, subs in subscriptions_by_customer(session).items()
    }


def store_flags(session: Session, flags: list[Flag], as_of: date, now: datetime) -> dict[Key, int]:
    """Keep the flag history: same action and stage → same row; a change closes it."""
    open_rows = {
        (row.customer_id, row.currency): row
        for row in session.scalars(select(CollectionFlag).where(CollectionFlag.left_at.is_(None)))
    }
    ids: dict[Key, int] = {}
    for flag in flags:
        key = (flag.customer_id, flag.currency)
        row = open_rows.pop(key, None)
        if row is not None and (row.action, row.stage) != (flag.action, flag.stage):
            row.left_at = now
            row = None
        if row is None:
            row = CollectionFlag(
                customer_id=flag.customer_id,
                currency=flag.currency,
                action=flag.action,
                stage=flag.stage,
                entered_at=now,
                left_at=None,
            )
            session.add(row)
        row.overdue_amount = flag.overdue_amount
        row.days_overdue = flag.days_overdue
        row.reasons = list(flag.reasons)
        row.as_of = as_of
        session.flush()
        ids[key] = row.id
    for row in open_rows.values():  # no longer owes anything, nor has anything to reactivate
        row.left_at = now
    return ids


def delisted_customers(session: Session) -> dict[str, datetime]:
    """Customers Partner Center no longer lists (their relationship ended), and since when."""
    rows = session.execute(
        select(Customer.id, Customer.delisted_at).where(Customer.delisted_at.is_not(None))
    )
    return {customer: at for customer, at in rows if at is not None}


def _with_delisted(flags: list[Flag], delisted: dict[str, datetime]) -> list[Flag]:
    """A customer Microsoft no longer lists is never suspended nor reactivated: its
    subscriptions are out of the partner's reach. The plan says so instead."""
    out = []
    for flag in flags:
        since = delisted.get(flag.customer_id)
        if since is None or flag.action not in ("suspend", "reactivate"):
            out.append(flag)
            continue
        why = (
            f"no longer listed by Microsoft (since {since:%Y-%m-%d}): the partner relationship "
            f"ended, so pcsync cannot {flag.action} its subscriptions"
        )
        out.append(replace(flag, action="none", stage=None, reasons=(why, *flag.reasons)))
    return out


def _with_guard_notes(
    sessions: sessionmaker[Session], flags: list[Flag], as_of: date, within_days: int
) -> list[Flag]:
    """A customer to follow up or suspend: the renewal guard (terms about to renew,
    cancellation windows open), and its Azure plans' consumption and what can be done."""
    pressed = {f.customer_id for f in flags if f.action in PRESSED}
    with sessions() as session:
        plans = azure_plans(session, pressed)
        guard = renewal_guard(session, pressed, as_of, within_days)
    notes: dict[str, list[str]] = defaultdict(list)
    for item in guard:
        notes[item.customer_id].append(item.text)
    for customer, views in plans.items():
        notes[customer].extend(n for v in views for n in plan_notes(v))
    return [
        replace(flag, reasons=(*flag.reasons, *notes[flag.customer_id]))
        if notes.get(flag.customer_id) and flag.action in PRESSED
        else flag
        for flag in flags
    ]


def plan_collections(
    settings: Settings, sessions: sessionmaker[Session], as_of: date, *, store: bool = True
) -> CollectionsPlan:
    """Flags per customer and currency as of a date, from a fresh reconciliation.

    ``store`` records them in the flag history (the collections round, approve
    and apply do; ``collections plan`` and reports, which may look at any date
    and change nothing, pass False).
    """
    with cycle_collection_paused():
        with sessions() as session:
            _check_customers_known(session, settings.collections)
            inputs = load_inputs(session, settings, as_of)
            suspended = suspended_by_pcsync(session)
            terms = _terms(session)
            holds = holds_in_force(session, as_of)
            delisted = delisted_customers(session)
        result = reconcile(inputs)
    flags = plan(result.ledgers, policy_from_settings(settings), inputs.customers, suspended, terms)
    held = held_back(flags, holds)
    flags = _with_delisted(with_holds(flags, holds), delisted)
    flags = _with_guard_notes(sessions, flags, as_of, settings.collections.terms_ending_days)
    ids: dict[Key, int] = {}
    if store:
        with sessions.begin() as session:
            ids = store_flags(session, flags, as_of, datetime.now(UTC))
    ledgers = {(ledger.customer_id, ledger.currency): ledger for ledger in result.ledgers}
    return CollectionsPlan(as_of, flags, ledgers, ids, delisted, held)


@dataclass(frozen=True)
class FlagStay:
    """One customer's stay at one action and stage, in one currency."""

    customer_id: str
    currency: str
    action: str
    stage: str | None
    entered_at: datetime
    left_at: datetime | None
    last_as_of: date
    overdue_amount: Decimal
    days_overdue: int

    def as_json(self) -> dict[str, object]:
        """The stay as in ``pcsync collections history --json``."""
        return {
            "customer_id": self.customer_id,
            "currency": self.currency,
            "action": self.action,
            "stage": self.stage,
            "entered_at": self.entered_at.isoformat(),
            "left_at": self.left_at.isoformat() if self.left_at else None,
            "last_as_of": self.last_as_of.isoformat(),
            "overdue_amount": str(round_money(self.overdue_amount, self.currency)),
            "days_overdue": self.days_overdue,
        }


def flag_history(sessions: sessionmaker[Session], customer_id: str | None = None) -> list[FlagStay]:
    """When each customer entered and left each stage, oldest first."""
    query = select(CollectionFlag).order_by(CollectionFlag.id)
    if customer_id is not None:
        query = query.where(CollectionFlag.customer_id == customer_id)
    with sessions() as session:
        return [
            FlagStay(
                r.customer_id,
                r.currency,
                r.action,
                r.stage,
                r.entered_at,
                r.left_at,
                r.as_of,
                r.overdue_amount,
                r.days_overdue,
            )
            for r in session.scalars(query)
        ]
