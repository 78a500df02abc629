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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter, StatusChange, SubscriptionStatus
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
from sync.collections.approvals import valid_approvals
from sync.collections.azure import PERMANENT_REFUSALS, azure_plans, plan_notes
from sync.collections.plan import (
    CollectionsPlan,
    SubscriptionView,
    plan_collections,
    subscriptions_by_customer,
    suspended_by_pcsync,
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

Verb = Literal["suspend", "reactivate"]
TARGET = {"suspend": SubscriptionStatus.SUSPENDED, "reactivate": SubscriptionStatus.ACTIVE}


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
    settings: Settings, suspend_customers: int, active_customers: int, suspended_total: int
) -> str | None:
    limits = settings.collections
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
                )
            )
    return changes, waiting


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
        approvals = {
            c: a.id for c, a in valid_approvals(session, plan, actor, datetime.now(UTC)).items()
        }
        ours = suspended_by_pcsync(session)
    if refresh is not None:
        actions = {(f.customer_id, f.action) for f in plan.flags}
        refresh(
            sorted(
                {c for c in approvals if (c, "suspend") in actions}
                | {c for c in ours if (c, "reactivate") in actions}
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
    changes, waiting = _changes(plan, subs, approvals, ours, blocked)
    suspending = len({c.customer_id for c in changes if c.action == "suspend"})
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
        _refusal(settings, suspending, active, total),
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


def _refused(session: Session, approvals: dict[str, int]) -> dict[str, str]:
    """Suspensions Microsoft refused for good under the approval still in force."""
    if not approvals:
        return {}
    rows = session.execute(
        select(Action.subscription_id, Action.error, Action.requested_at)
        .where(
            Action.action == "suspend",
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
        done = live.status is TARGET[verb]
        if done:
            settled[(sub_id, verb)] = "done"
        with sessions.begin() as session:
            upsert_subscriptions(session, customer, [live], datetime.now(UTC), run)
            row = session.get_one(Action, action_id)
            row.result = "succeeded" if done else "failed"
            row.status_after = live.status.value
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
        outcome = pc.set_status(change.customer_id, change.subscription_id, TARGET[change.action])
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
            row.status_after = outcome.after.status.value
            upsert_subscriptions(
                session, change.customer_id, [outcome.after], datetime.now(UTC), run
            )
        else:
            row.result = "succeeded" if outcome.changed else "unchanged"
            row.status_before = outcome.before.status.value
            row.status_after = outcome.after.status.value
            upsert_subscriptions(
                session, change.customer_id, [outcome.after], datetime.now(UTC), run
            )
        run.count(change.action, row.result)
        _audit_attempt(session, row, actor, run.run_id, why=change.why, settled=settled)
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
    if live.status is not TARGET[change.action]:
        return None, None
    answer = "412 (etag changed)" if isinstance(exc, ConflictError) else "no answer"
    return StatusChange(live, live, None, changed=True), (
        f"{answer}; read back as {live.status.value}: done"
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
        for change in plan.changes:
            state = settled.get((change.subscription_id, change.action))
            if state == "done":
                continue
            if state is not None:
                progress(change, "skipped", state)
                outcome.failures.append((change, state))
                continue
            result, error = _attempt(sessions, pc, change, actor, run)
            progress(change, result, error)
            if result == "refused":
                outcome.refusals.append((change, error or "refused"))
            elif error is not None:
                outcome.failures.append((change, error))
        outcome.counts = {
            f"{verb} {result}": n
            for verb in TARGET
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
