"""Executing a prepared apply: settle what an earlier run left pending, then make each change.

It refuses everything when a safety limit is exceeded, goes on past a refused
subscription and reports the failures at the end — a rerun only retries what
is not yet in its target state — and never reports a refusal no rerun can
overcome as "rerun to finish". Before anything, it records the approvals that
lapsed under the plan it was prepared from (the lapse step: revoked with the
reason, audited).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter
from sync import audit
from sync.collections.apply.attempt import attempt, delisted_since, settle_interrupted
from sync.collections.apply.model import VERBS, ApplyOutcome, ApplyPlan, Change, require_today
from sync.collections.approvals import lapse_approvals
from sync.db.models import Action
from sync.errors import ApplyError, SafetyLimitError
from sync.runtime.runs import recorded_run

__all__ = ["execute_apply", "settle_before_apply"]


def settle_before_apply(
    sessions: sessionmaker[Session],
    connect: Callable[[], PartnerCenter],
    actor: str,
    note: Callable[[str], None] = lambda line: None,
) -> int:
    """Settle what a killed run left pending, before the next apply is decided; how many.

    A suspension Microsoft made whose answer never reached pcsync becomes pcsync's
    when settled. Decided before that, the apply would not see it as pcsync's: a
    customer who paid since would stay suspended by a run that reports success.
    Settling only reads Microsoft's status; nothing is sent.
    """
    with sessions() as session:
        query = select(func.count()).select_from(Action).where(Action.result == "pending")
        pending = session.scalar(query) or 0
    if pending:
        params = {"settle_interrupted": pending, "by": actor}
        with recorded_run(sessions, "collections_apply", "manual", params) as run:
            settled = settle_interrupted(sessions, connect(), actor, run)
        # Ended without reaching its target (out of reach): said now, as the apply
        # will not plan it; those still pending are told by the apply's own settling.
        _tell(sessions, settled, set(), note, pending_too=False)
    return pending


def execute_apply(
    sessions: sessionmaker[Session],
    plan: ApplyPlan,
    connect: Callable[[], PartnerCenter],
    actor: str,
    progress: Callable[[Change, str, str | None], None] = lambda change, result, error: None,
    *,
    today: date,
    note: Callable[[str], None] = lambda line: None,
) -> ApplyOutcome:
    """Make the prepared changes in Partner Center; raise ApplyError if any failed.

    Only a plan as of ``today`` (in the schedule's time zone) is applied.
    ``progress`` hears each change's result as it is made.
    """
    require_today(plan.as_of, today)
    if plan.collections is not None and plan.decided_at is not None:
        with sessions.begin() as session:
            lapse_approvals(session, plan.collections, actor, plan.decided_at)
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
        settled = settle_interrupted(sessions, pc, actor, run)
        unsettled = _settled_outside_the_plan(sessions, settled, plan, note)
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
            result, error = attempt(sessions, pc, change, actor, run)
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
        if unsettled and not outcome.failures:
            made = "; the changes planned were made" if plan.changes else ""
            raise ApplyError(
                f"{len(unsettled)} interrupted attempt(s) of an earlier run could not be "
                f"settled (first: {unsettled[0]}){made} — rerun "
                "`pcsync collections apply --apply` once Microsoft answers for it"
            )
        if outcome.failures:
            raise ApplyError(
                f"{len(outcome.failures)} of {len(plan.changes)} change(s) failed (first: "
                f"{outcome.failures[0][0].subscription_id}: {outcome.failures[0][1]}); the others "
                "were made — see `pcsync audit`, then rerun `pcsync collections apply --apply` "
                "to finish"
            )
    return outcome


def _settled_outside_the_plan(
    sessions: sessionmaker[Session],
    settled: dict[tuple[str, str], str],
    plan: ApplyPlan,
    note: Callable[[str], None],
) -> list[str]:
    """Tell what became of interrupted attempts whose change is not planned (now delisted,
    or no longer needed); return those still pending, which a success must not hide."""
    planned: set[tuple[str, str]] = {(c.subscription_id, c.action) for c in plan.changes}
    return _tell(sessions, settled, planned, note, pending_too=True)


def _tell(
    sessions: sessionmaker[Session],
    settled: dict[tuple[str, str], str],
    skip: set[tuple[str, str]],
    note: Callable[[str], None],
    *,
    pending_too: bool,
) -> list[str]:
    """Note each interrupted attempt settled short of its target (and, with
    ``pending_too``, each still pending); return the lines of those still pending."""
    others = {k: why for k, why in settled.items() if why != "done" and k not in skip}
    if not others:
        return []
    with sessions() as session:
        rows = session.execute(
            select(Action.id, Action.subscription_id, Action.action).where(
                Action.result == "pending",
                Action.subscription_id.in_({sub_id for sub_id, _ in others}),
            )
        ).all()
    pending = {(sub_id, verb) for _, sub_id, verb in rows}
    gone = delisted_since(sessions, [action_id for action_id, _, _ in rows])
    # Shown, not failed: settled once Microsoft lists the subscription again.
    waiting = {(sub_id, verb) for action_id, sub_id, verb in rows if action_id in gone}
    left = []
    for (sub_id, verb), why in sorted(others.items()):
        line = f"{verb} {sub_id} (interrupted earlier): {why}"
        if (sub_id, verb) in pending and (sub_id, verb) not in waiting:
            left.append(line)
        if pending_too or (sub_id, verb) not in pending:
            note(line)
    return left
