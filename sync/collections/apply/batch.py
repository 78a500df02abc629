"""Planning an apply's batch: which subscriptions change, which wait, and why.

Preparing changes nothing at Microsoft and revokes nothing: it reads which
approvals are in force (a lapsed one is simply not), refreshes the affected
customers' subscriptions when asked, and lists every change — reactivations
first (never limited, never waiting for approval), then the approved
suspensions, each auto-renew change after the status change of its
subscription — the customers still waiting and why, and whether a safety
limit refuses the whole batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter
from connectors.partner_center.resources import AzureEntitlement
from sync.collections.apply.blocked import blocked, refused
from sync.collections.apply.limits import refusal
from sync.collections.apply.model import PRESSED, ApplyPlan, Change, Waiting
from sync.collections.apply.renewal import Renewals, renewal_changes
from sync.collections.approvals import stop_renewal_approvals, valid_approvals
from sync.collections.plan import (
    CollectionsPlan,
    SubscriptionView,
    plan_collections,
    subscriptions_by_customer,
    suspended_by_pcsync,
)
from sync.collections.renewals import (
    auto_renew_before_suspension,
    renewal_guard,
    renewals_stopped_by_pcsync,
)
from sync.config import Settings
from sync.db.models import Action
from sync.runtime.runs import recorded_run
from sync.store import upsert_subscriptions

__all__ = ["prepare_apply", "refresh_subscriptions"]


def _changes(
    plan: CollectionsPlan,
    subs: dict[str, list[SubscriptionView]],
    approvals: dict[str, int],
    ours: dict[str, list[str]],
    held: dict[str, str],
) -> tuple[list[Change], list[Waiting]]:
    """Reactivations of what pcsync suspended, then suspensions of approved customers."""
    changes: list[Change] = []
    waiting: list[Waiting] = []
    by_customer: dict[str, list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    for flag in plan.flags:
        by_customer[flag.customer_id].append(flag.action)
        names[flag.customer_id] = flag.customer_name
    # Restoring service first: it is never limited and never waits for approval.
    for customer, actions in sorted(by_customer.items()):
        if "reactivate" not in actions or "suspend" in actions:
            continue
        status = {s.id: s for s in subs.get(customer, [])}
        for sub_id in ours.get(customer, []):
            sub = status.get(sub_id)
            changes.append(
                Change(
                    customer,
                    names[customer],
                    sub_id,
                    sub.name if sub else sub_id,
                    "reactivate",
                    sub.status if sub else "unknown",
                    None,
                    "pcsync suspended it; the customer is no longer at a suspend stage",
                    sub.auto_renew if sub else None,
                )
            )
    for customer, actions in sorted(by_customer.items()):
        if "suspend" not in actions:
            continue
        approval = approvals.get(customer)
        if approval is None:
            waiting.append(
                Waiting(
                    customer,
                    names[customer],
                    f"needs approval: pcsync collections approve {customer}",
                )
            )
            continue
        active = [s for s in subs.get(customer, []) if s.status == "active"]
        if not active:
            waiting.append(
                Waiting(customer, names[customer], "no active subscriptions (already suspended)")
            )
        stages = sorted({f.stage or "" for f in plan.for_customer(customer)} - {""})
        for sub in active:
            if sub.id in held:
                waiting.append(Waiting(customer, names[customer], held[sub.id]))
                continue
            changes.append(
                Change(
                    customer,
                    names[customer],
                    sub.id,
                    sub.name,
                    "suspend",
                    sub.status,
                    approval,
                    f"at stage {', '.join(stages)}; approved (approval {approval})",
                    sub.auto_renew,
                )
            )
    return changes, waiting


def _without_delisted(
    changes: list[Change], plan: CollectionsPlan
) -> tuple[list[Change], list[Waiting]]:
    """The changes, less any of a customer Microsoft no longer lists: its subscriptions are
    out of the partner's reach (the plan suspends and reactivates none; its auto-renew
    changes are left out here), each such customer listed as waiting, with why."""
    kept = [c for c in changes if c.customer_id not in plan.delisted]
    waiting = {
        c.customer_id: Waiting(
            c.customer_id,
            c.customer_name,
            f"no longer listed by Microsoft (since {plan.delisted[c.customer_id]:%Y-%m-%d}): "
            "the partner relationship ended, so pcsync changes none of its subscriptions",
        )
        for c in changes
        if c.customer_id in plan.delisted
    }
    return kept, list(waiting.values())


def refresh_subscriptions(
    sessions: sessionmaker[Session], pc: PartnerCenter, customers: list[str]
) -> None:
    """Read these customers' subscriptions from Partner Center into the mirror, now.

    An apply acts on what Microsoft has at this moment — a subscription bought
    since the last sync is suspended too, one Microsoft no longer lists is
    delisted and left alone — and a customer that cannot be read stops the apply
    before anything changes.
    """
    if not customers:
        return
    with recorded_run(sessions, "subscriptions_refresh", "manual", {"customers": customers}) as run:
        for customer in customers:
            # Read whole or not at all (an error or unreadable record raises): complete, as
            # in the sync, so a stored subscription it leaves out is delisted.
            subscriptions = list(pc.subscriptions(customer))
            with sessions.begin() as session:
                upsert_subscriptions(
                    session, customer, subscriptions, datetime.now(UTC), run, complete=True
                )


def prepare_apply(
    settings: Settings,
    sessions: sessionmaker[Session],
    as_of: date,
    *,
    refresh: Callable[[list[str]], None] | None = None,
    entitlements: Callable[[str, str], list[AzureEntitlement]] | None = None,
    record_flags: bool = False,
) -> ApplyPlan:
    """Decide what an apply as of this date would change (changes nothing at Microsoft).

    ``refresh``, when given, brings the affected customers' subscriptions up to
    date first (see ``refresh_subscriptions``). ``entitlements``, when given,
    reads an Azure plan's Azure subscriptions: a plan with an active one is not
    sent (Microsoft would refuse it, 900115) but listed with what to do by hand.
    ``record_flags`` records the plan in the flag history: the real apply does (it
    acts on today's flags); a dry run, which may look at any date, does not.
    """
    plan = plan_collections(settings, sessions, as_of, store=record_flags)
    now = datetime.now(UTC)
    with sessions() as session:
        approvals = {c: a.id for c, a in valid_approvals(session, plan, now).items()}
        stops = {c: a.id for c, a in stop_renewal_approvals(session, plan, now).items()}
        ours = suspended_by_pcsync(session)
        stopped = renewals_stopped_by_pcsync(session)
    pressed = {f.customer_id for f in plan.flags if f.action in PRESSED}
    if refresh is not None:
        actions = {(f.customer_id, f.action) for f in plan.flags}
        refresh(
            sorted(
                (
                    {c for c in approvals if (c, "suspend") in actions}
                    | {c for c in ours if (c, "reactivate") in actions}
                    | (set(stops) & pressed)
                    | (set(stopped) - pressed)
                )
                - set(plan.delisted)  # Microsoft no longer lists them: nothing to read
            )
        )
    with sessions() as session:
        if refresh is not None:
            ours = suspended_by_pcsync(session)  # less any the refresh found delisted
        subs = subscriptions_by_customer(session)
        interrupted = (
            session.scalar(
                select(func.count()).select_from(Action).where(Action.result == "pending")
            )
            or 0
        )
        held = blocked(session, plan, subs, approvals, entitlements)
        guard = renewal_guard(
            session, set(stops) & pressed, as_of, settings.collections.terms_ending_days
        )
        renewals = Renewals(
            stops,
            {
                c: {i.subscription_id for i in guard if i.customer_id == c and i.renews_on}
                for c in stops
            },
            stopped,
            refused(session, stops, "stop_renewal"),
        )
        changes, waiting = _changes(plan, subs, approvals, ours, held)
        changes, more = renewal_changes(
            plan, subs, renewals, changes, lambda sub: auto_renew_before_suspension(session, sub)
        )
    waiting += more
    changes, out_of_reach = _without_delisted(changes, plan)
    waiting += out_of_reach
    suspending = len({c.customer_id for c in changes if c.action == "suspend"})
    stopping = len({c.customer_id for c in changes if c.action == "stop_renewal"})
    acted_on = len({c.customer_id for c in changes if c.action in ("suspend", "stop_renewal")})
    active = sum(1 for rows in subs.values() if any(s.status == "active" for s in rows))
    # Those pcsync keeps suspended after this apply: its own, less those it reactivates now.
    restored = {c.customer_id for c in changes if c.action == "reactivate"}
    total = len((set(ours) - restored) | {c.customer_id for c in changes if c.action == "suspend"})
    return ApplyPlan(
        as_of,
        changes,
        waiting,
        interrupted,
        suspending,
        active,
        refusal(settings, suspending, active, total, acted_on),
        stopping,
        plan,
        now,
    )
