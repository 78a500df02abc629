"""``pcsync collections apply``: suspend approved customers, reactivate paid ones — safely.

Preparing an apply changes nothing at Microsoft: it lists every subscription
that would change and why, the customers still waiting for an approval, and
whether a safety limit refuses the whole apply. Executing it:

* refuses everything when the safety limits are exceeded;
* writes each attempt as ``pending`` *before* asking Microsoft, so a run killed
  mid-request is found and settled by the next run (the live status decides);
* changes one subscription per transaction, keeping the mirror and the audit
  log in step with what Microsoft answered;
* settles every unclear answer from the live status: a PATCH that timed out
  (Microsoft may have applied it) or met a changed etag (412, as a retry of an
  applied PATCH does) is read back, and is done when the subscription already
  is in its target state — so pcsync knows what it suspended;
* goes on past a refused subscription and reports the failures at the end — a
  rerun only retries what is not yet in its target state;
* records a refusal no rerun can overcome (an Azure plan with an active Azure
  subscription, 900115; a deleted subscription) as ``refused``: it is not sent
  again under the same approval and never reported as "rerun to finish".

Reactivation touches only subscriptions pcsync owns (see ``suspended_by_pcsync``).

The renewal guard's action, ``stop_renewal`` (auto-renew off, PATCH
``autoRenewEnabled``), goes the same way: approved per customer (an approval of
kind ``stop_renewal``, at a follow_up or suspend stage), counted in the
per-apply limits, written ``pending`` first, audited. ``restore_renewal`` (auto-
renew on) needs no approval and is never limited: it turns back on what pcsync
turned off once the customer is no longer at a follow_up or suspend stage, and
after a reactivation it restores auto-renew when it was on before pcsync's
suspension (recorded as ``auto_renew_before`` with the suspension's audit entry).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import (
    PartnerCenter,
    StatusChange,
    Subscription,
    SubscriptionStatus,
)
from connectors.partner_center.resources import AzureEntitlement
from reconciliation.errors import (
    ApiError,
    ApplyError,
    ConflictError,
    ConnectorError,
    InputError,
    RetriableError,
    SafetyLimitError,
)
from sync import audit
from sync.collections.approvals import stop_renewal_approvals, valid_approvals
from sync.collections.azure import PERMANENT_REFUSALS, azure_plans, plan_notes
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
from sync.runs import RunRecorder, recorded_run
from sync.store import upsert_subscriptions

__all__ = [
    "ApplyOutcome",
    "ApplyPlan",
    "Change",
    "Waiting",
    "execute_apply",
    "prepare_apply",
    "refresh_subscriptions",
    "require_today",
]

Verb = Literal["suspend", "reactivate", "stop_renewal", "restore_renewal"]
TARGET = {"suspend": SubscriptionStatus.SUSPENDED, "reactivate": SubscriptionStatus.ACTIVE}
RENEW = {"stop_renewal": False, "restore_renewal": True}  # auto-renew wanted
VERBS: tuple[Verb, ...] = ("suspend", "reactivate", "stop_renewal", "restore_renewal")
PRESSED = ("follow_up", "suspend")  # the stages at which a customer has not paid


def renew_state(enabled: bool | None) -> str:
    """Auto-renew as an action row's before/after state."""
    if enabled is None:
        return "auto-renew n/a"
    return "auto-renew on" if enabled else "auto-renew off"


def _reached(verb: str, sub: Subscription) -> bool:
    if verb in RENEW:
        return sub.auto_renew is RENEW[verb]
    return sub.status is TARGET[verb]


def _state(verb: str, sub: Subscription) -> str:
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


def _refusal(
    settings: Settings,
    suspend_customers: int,
    active_customers: int,
    suspended_total: int,
    acted_on: int | None = None,
) -> str | None:
    """Why a safety limit refuses this apply. ``acted_on``: the customers it suspends or
    stops the renewals of (the per-apply limits count both), when not only suspensions."""
    limits = settings.collections
    if acted_on is not None and acted_on != suspend_customers:
        if acted_on > limits.max_suspend_customers:
            return (
                f"this apply would suspend or stop the renewals of {acted_on} customers, more "
                f"than [collections] max_suspend_customers = {limits.max_suspend_customers}"
            )
        if active_customers and Decimal(acted_on) / active_customers > limits.max_suspend_share:
            return (
                f"this apply would suspend or stop the renewals of {acted_on} of the "
                f"{active_customers} customers with active subscriptions, more than "
                f"[collections] max_suspend_share = {limits.max_suspend_share}"
            )
    if suspended_total > limits.max_suspended_total:
        return (
            f"after this apply pcsync would keep {suspended_total} customers suspended, more "
            f"than [collections] max_suspended_total = {limits.max_suspended_total}"
        )
    if suspend_customers > limits.max_suspend_customers:
        return (
            f"this apply would suspend {suspend_customers} customers, more than "
            f"[collections] max_suspend_customers = {limits.max_suspend_customers}"
        )
    if (
        active_customers
        and Decimal(suspend_customers) / active_customers > limits.max_suspend_share
    ):
        return (
            f"this apply would suspend {suspend_customers} of the {active_customers} customers "
            f"with active subscriptions, more than [collections] max_suspend_share = "
            f"{limits.max_suspend_share}"
        )
    return None


def _changes(
    plan: CollectionsPlan,
    subs: dict[str, list[SubscriptionView]],
    approvals: dict[str, int],
    ours: dict[str, list[str]],
    blocked: dict[str, str],
) -> tuple[list[Change], list[Waiting]]:
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
            if sub.id in blocked:
                waiting.append(Waiting(customer, names[customer], blocked[sub.id]))
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


@dataclass(frozen=True)
class _Renewals:
    """What the renewal changes of an apply are decided from."""

    approvals: dict[str, int]  # stop_renewal approval per customer
    renewing: dict[str, set[str]]  # per customer: subscriptions renewing within the window
    stopped: dict[str, list[str]]  # per customer: auto-renew pcsync turned off, still off
    refused: dict[str, str]  # subscriptions Microsoft refused for good under the approval


def _renewal_changes(
    plan: CollectionsPlan,
    subs: dict[str, list[SubscriptionView]],
    renewals: _Renewals,
    changes: list[Change],
    before_suspension: Callable[[str], bool | None],
) -> tuple[list[Change], list[Waiting]]:
    """Auto-renew changes, each placed after the status change of its subscription."""
    out: list[Change] = []
    waiting: list[Waiting] = []
    names = {f.customer_id: f.customer_name for f in plan.flags}
    pressed = {f.customer_id for f in plan.flags if f.action in PRESSED}
    views = {s.id: s for rows in subs.values() for s in rows}
    moving = {c.subscription_id: c.action for c in changes}
    restoring: set[str] = set()
    for change in changes:
        out.append(change)
        if change.action != "reactivate":
            continue
        if before_suspension(change.subscription_id) is True:
            restoring.add(change.subscription_id)
            out.append(
                replace(
                    change,
                    action="restore_renewal",
                    status_now=renew_state(change.auto_renew_now),
                    why="auto-renew was on before pcsync suspended it; restored with the "
                    "reactivation",
                )
            )
    for customer, sub_ids in sorted(renewals.stopped.items()):
        if customer in pressed:
            continue
        for sub_id in sub_ids:
            view = views.get(sub_id)
            if sub_id in restoring or view is None:
                continue
            if view.status != "active" and moving.get(sub_id) != "reactivate":
                continue  # Microsoft refuses auto-renew changes on a suspended one (800091)
            restoring.add(sub_id)
            out.append(
                Change(
                    customer,
                    names.get(customer, customer),
                    sub_id,
                    view.name,
                    "restore_renewal",
                    renew_state(view.auto_renew),
                    None,
                    "pcsync turned auto-renew off; the customer is no longer at a follow_up or "
                    "suspend stage",
                    view.auto_renew,
                )
            )
    for customer, approval in sorted(renewals.approvals.items()):
        if customer not in pressed:
            continue
        stages = sorted({f.stage or "" for f in plan.for_customer(customer)} - {""})
        for sub_id in sorted(renewals.renewing.get(customer, set())):
            view = views.get(sub_id)
            if view is None or view.status != "active" or view.auto_renew is not True:
                continue
            if moving.get(sub_id) == "suspend":
                continue  # the suspension turns auto-renew off (recorded to restore it)
            if sub_id in renewals.refused:
                waiting.append(Waiting(customer, names[customer], renewals.refused[sub_id]))
                continue
            end = f", term ends {view.term_end}" if view.term_end else ""
            out.append(
                Change(
                    customer,
                    names[customer],
                    sub_id,
                    view.name,
                    "stop_renewal",
                    renew_state(view.auto_renew),
                    approval,
                    f"renewal guard: auto-renews soon{end}; at stage {', '.join(stages)}; "
                    f"approved (approval {approval})",
                    view.auto_renew,
                )
            )
    return out, waiting


def refresh_subscriptions(
    sessions: sessionmaker[Session], pc: PartnerCenter, customers: list[str]
) -> None:
    """Read these customers' subscriptions from Partner Center into the mirror, now.

    An apply acts on what Microsoft has at this moment — a subscription bought
    since the last sync is suspended too — and a customer that cannot be read
    stops the apply before anything changes.
    """
    if not customers:
        return
    with recorded_run(sessions, "subscriptions_refresh", "manual", {"customers": customers}) as run:
        for customer in customers:
            subscriptions = list(pc.subscriptions(customer))
            with sessions.begin() as session:
                upsert_subscriptions(session, customer, subscriptions, datetime.now(UTC), run)


def prepare_apply(
    settings: Settings,
    sessions: sessionmaker[Session],
    as_of: date,
    actor: str,
    refresh: Callable[[list[str]], None] | None = None,
    entitlements: Callable[[str, str], list[AzureEntitlement]] | None = None,
) -> ApplyPlan:
    """Decide what an apply as of this date would change (changes nothing at Microsoft).

    ``refresh``, when given, brings the affected customers' subscriptions up to
    date first (see ``refresh_subscriptions``). ``entitlements``, when given,
    reads an Azure plan's Azure subscriptions: a plan with an active one is not
    sent (Microsoft would refuse it, 900115) but listed with what to do by hand.
    """
    plan = plan_collections(settings, sessions, as_of)
    with sessions.begin() as session:
        now = datetime.now(UTC)
        approvals = {c: a.id for c, a in valid_approvals(session, plan, actor, now).items()}
        stops = {c: a.id for c, a in stop_renewal_approvals(session, plan, actor, now).items()}
        ours = suspended_by_pcsync(session)
        stopped = renewals_stopped_by_pcsync(session)
    pressed = {f.customer_id for f in plan.flags if f.action in PRESSED}
    if refresh is not None:
        actions = {(f.customer_id, f.action) for f in plan.flags}
        refresh(
            sorted(
                {c for c in approvals if (c, "suspend") in actions}
                | {c for c in ours if (c, "reactivate") in actions}
                | (set(stops) & pressed)
                | (set(stopped) - pressed)
            )
        )
    with sessions() as session:
        subs = subscriptions_by_customer(session)
        interrupted = (
            session.scalar(
                select(func.count()).select_from(Action).where(Action.result == "pending")
            )
            or 0
        )
        blocked = _blocked(session, plan, subs, approvals, entitlements)
        guard = renewal_guard(
            session, set(stops) & pressed, as_of, settings.collections.terms_ending_days
        )
        renewals = _Renewals(
            stops,
            {
                c: {i.subscription_id for i in guard if i.customer_id == c and i.renews_on}
                for c in stops
            },
            stopped,
            _refused(session, stops, "stop_renewal"),
        )
        changes, waiting = _changes(plan, subs, approvals, ours, blocked)
        changes, more = _renewal_changes(
            plan, subs, renewals, changes, lambda sub: auto_renew_before_suspension(session, sub)
        )
    waiting += more
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
        _refusal(settings, suspending, active, total, acted_on),
        stopping,
    )


def _blocked(
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
    refused = _refused(session, approvals)
    blocked: dict[str, str] = {}
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
                    blocked[view.subscription_id] = (
                        f"Azure plan not suspended: Azure subscription(s) still active: {names}. "
                        + notes
                    )
                continue
            if view.subscription_id in refused:
                blocked[view.subscription_id] = f"{refused[view.subscription_id]}. {notes}"
        azure = {v.subscription_id for v in plans.get(customer, [])}
        for sub in subs.get(customer, []):
            if sub.id in refused and sub.id not in azure and sub.status == "active":
                blocked[sub.id] = refused[sub.id]
    return blocked


def _refused(session: Session, approvals: dict[str, int], verb: Verb = "suspend") -> dict[str, str]:
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


def _settle_interrupted(
    sessions: sessionmaker[Session], pc: PartnerCenter, actor: str, run: RunRecorder
) -> dict[tuple[str, str], str]:
    """Attempts left ``pending`` by a killed run: Microsoft's live status says how they ended.

    Returns, per (subscription, action), ``done`` (no new attempt needed) or
    the reason its outcome is still unknown: such an attempt stays pending, and
    its subscription is not touched until a later run can read it — otherwise a
    suspension pcsync made could be mistaken for someone else's.
    """
    with sessions() as session:
        pending = session.scalars(select(Action).where(Action.result == "pending")).all()
        todo = [(a.id, a.customer_id, a.subscription_id, a.action) for a in pending]
    settled: dict[tuple[str, str], str] = {}
    for action_id, customer, sub_id, verb in todo:
        try:
            live = pc.subscription(customer, sub_id)
        except ConnectorError as exc:
            settled[(sub_id, verb)] = f"an interrupted earlier attempt cannot be read yet: {exc}"
            continue
        done = _reached(verb, live)
        if done:
            settled[(sub_id, verb)] = "done"
        with sessions.begin() as session:
            upsert_subscriptions(session, customer, [live], datetime.now(UTC), run)
            row = session.get_one(Action, action_id)
            row.result = "succeeded" if done else "failed"
            row.status_after = _state(verb, live)
            row.error = None if done else "interrupted before Microsoft answered; not applied"
            _audit_attempt(session, row, actor, run.run_id, settled_after_interruption=True)
    return settled


def _audit_attempt(session: Session, row: Action, actor: str, run_id: int, **extra: Any) -> None:
    """One audit entry for one attempt, as its action row ended."""
    audit.record(
        session,
        row.action,
        actor,
        customer_id=row.customer_id,
        subscription_id=row.subscription_id,
        run_id=run_id,
        result=row.result,
        status_before=row.status_before,
        status_after=row.status_after,
        ms_request_id=row.ms_request_id,
        approval_id=row.approval_id,
        error=row.error,
        **extra,
    )


def _refusal_text(exc: ConnectorError) -> str:
    # Microsoft's own code and words are what a support case and the admin need.
    if isinstance(exc, ApiError) and exc.code and exc.description:
        return f"Microsoft refused ({exc.status} {exc.code}): {exc.description}"
    return str(exc)


def _attempt(
    sessions: sessionmaker[Session],
    pc: PartnerCenter,
    change: Change,
    actor: str,
    run: RunRecorder,
) -> tuple[str, str | None]:
    """Make one change; returns the result (succeeded, unchanged, failed) and the error."""
    with sessions.begin() as session:
        row = Action(
            run_id=run.run_id,
            approval_id=change.approval_id,
            customer_id=change.customer_id,
            subscription_id=change.subscription_id,
            action=change.action,
            status_before=change.status_now,
            result="pending",
            requested_by=actor,
            requested_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        action_id = row.id
    outcome: StatusChange | None = None
    error = request_id = settled = None
    refused = False
    try:
        if change.action in RENEW:
            outcome = pc.set_auto_renew(
                change.customer_id, change.subscription_id, RENEW[change.action]
            )
        else:
            outcome = pc.set_status(
                change.customer_id, change.subscription_id, TARGET[change.action]
            )
        request_id = outcome.request_id
    except (ConflictError, RetriableError) as exc:
        error, request_id = _refusal_text(exc), getattr(exc, "request_id", None)
        outcome, settled = _settle_unclear(pc, change, exc)
        if outcome is None and settled is not None:
            return "pending", settled  # unknown: the next run settles it from the live status
    except ConnectorError as exc:
        error, request_id = _refusal_text(exc), getattr(exc, "request_id", None)
        if isinstance(exc, ApiError) and exc.code in PERMANENT_REFUSALS:
            refused = True
    with sessions.begin() as session:
        row = session.get_one(Action, action_id)
        row.ms_request_id = request_id
        if outcome is None:
            row.result, row.error = ("refused" if refused else "failed"), error
        elif settled is not None:
            row.result, row.error = "succeeded", None
            row.status_after = _state(change.action, outcome.after)
            upsert_subscriptions(
                session, change.customer_id, [outcome.after], datetime.now(UTC), run
            )
        else:
            row.result = "succeeded" if outcome.changed else "unchanged"
            row.status_before = _state(change.action, outcome.before)
            row.status_after = _state(change.action, outcome.after)
            upsert_subscriptions(
                session, change.customer_id, [outcome.after], datetime.now(UTC), run
            )
        run.count(change.action, row.result)
        before = change.auto_renew_now
        if outcome is not None and settled is None:
            before = outcome.before.auto_renew
        _audit_attempt(
            session,
            row,
            actor,
            run.run_id,
            why=change.why,
            settled=settled,
            # What a reactivation restores auto-renew to (kept with the suspension).
            auto_renew_before=before if change.action == "suspend" else None,
        )
        return row.result, None if row.result == "succeeded" else error


def _settle_unclear(
    pc: PartnerCenter, change: Change, exc: ConnectorError
) -> tuple[StatusChange | None, str | None]:
    """After a 412 or a timeout, read the subscription: is it in the target state already?

    Returns (the change as read, how it was settled) when it is; (None, None)
    when it is not (the attempt failed); (None, why) when it cannot be read —
    the attempt stays pending for the next run.
    """
    try:
        live = pc.subscription(change.customer_id, change.subscription_id)
    except ConnectorError as again:
        return None, f"no clear answer ({exc}) and the subscription cannot be read: {again}"
    if not _reached(change.action, live):
        return None, None
    answer = "412 (etag changed)" if isinstance(exc, ConflictError) else "no answer"
    return StatusChange(live, live, None, changed=True), (
        f"{answer}; read back as {_state(change.action, live)}: done"
    )


def execute_apply(
    sessions: sessionmaker[Session],
    plan: ApplyPlan,
    connect: Callable[[], PartnerCenter],
    actor: str,
    progress: Callable[[Change, str, str | None], None] = lambda change, result, error: None,
    *,
    today: date,
) -> ApplyOutcome:
    """Make the prepared changes in Partner Center; raise ApplyError if any failed.

    Only a plan as of ``today`` (in the schedule's time zone) is applied.
    ``progress`` hears each change's result as it is made.
    """
    require_today(plan.as_of, today)
    if plan.refusal is not None:
        with sessions.begin() as session:
            audit.record(
                session,
                "apply_refused",
                actor,
                as_of=plan.as_of.isoformat(),
                reason=plan.refusal,
                suspend_customers=plan.suspend_customers,
            )
        raise SafetyLimitError(f"{plan.refusal}: nothing was changed")
    params = {"as_of": plan.as_of.isoformat(), "by": actor, "changes": len(plan.changes)}
    with recorded_run(sessions, "collections_apply", "manual", params) as run:
        outcome = ApplyOutcome(run.run_id)
        if not plan.changes and not plan.interrupted:
            return outcome
        pc = connect()
        settled = _settle_interrupted(sessions, pc, actor, run)
        not_reactivated: set[str] = set()
        for change in plan.changes:
            state = settled.get((change.subscription_id, change.action))
            if state == "done":
                continue
            if change.action == "restore_renewal" and change.subscription_id in not_reactivated:
                state = "not reactivated in this run: auto-renew is restored after it is"
            if state is not None:
                progress(change, "skipped", state)
                outcome.failures.append((change, state))
                continue
            result, error = _attempt(sessions, pc, change, actor, run)
            progress(change, result, error)
            if change.action == "reactivate" and result not in ("succeeded", "unchanged"):
                not_reactivated.add(change.subscription_id)
            if result == "refused":
                outcome.refusals.append((change, error or "refused"))
            elif error is not None:
                outcome.failures.append((change, error))
        outcome.counts = {
            f"{verb} {result}": n
            for verb in VERBS
            for result, n in sorted(run.counts.get(verb, {}).items())
        }
        if outcome.refusals and not outcome.failures:
            first, why = outcome.refusals[0]
            raise ApplyError(
                f"Microsoft refused {len(outcome.refusals)} of {len(plan.changes)} change(s) "
                f"for good (first: {first.subscription_id}: {why}); the others were made. "
                "Sending them again cannot succeed: they are recorded as refused and not sent "
                "again under this approval; see the reasons in `pcsync collections apply` "
                "(an Azure plan: what the partner can do by hand)"
            )
        if outcome.failures:
            raise ApplyError(
                f"{len(outcome.failures)} of {len(plan.changes)} change(s) failed (first: "
                f"{outcome.failures[0][0].subscription_id}: {outcome.failures[0][1]}); the others "
                "were made — see `pcsync audit`, then rerun `pcsync collections apply --apply` "
                "to finish"
            )
    return outcome
