"""One change made in Partner Center, and every unclear outcome settled from the live state.

Each attempt is written ``pending`` *before* Microsoft is asked, so a run killed
mid-request is found and settled by the next run; each is completed in its own
transaction with Microsoft's answer, keeping the mirror and the audit log in
step with it. A PATCH that timed out (Microsoft may have applied it) or met a
changed etag (412, as a retry of an applied PATCH does) is read back and is
done when the subscription already is in its target state — so pcsync knows
what it changed. A refusal no rerun can overcome is recorded ``refused``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter, StatusChange
from connectors.partner_center.errors import (
    ApiError,
    ConflictError,
    ConnectorError,
    RetriableError,
)
from sync import audit
from sync.collections.apply.model import RENEW, TARGET, Change, reached, state_of
from sync.collections.azure import PERMANENT_REFUSALS
from sync.db.models import Action, Customer, Subscription
from sync.runtime.runs import RunRecorder
from sync.store import upsert_subscriptions

__all__ = ["attempt", "delisted_since", "settle_interrupted"]


def settle_interrupted(
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
    gone = delisted_since(sessions, [action_id for action_id, *_ in todo])
    settled: dict[tuple[str, str], str] = {}
    for action_id, customer, sub_id, verb in todo:
        if action_id in gone:  # Microsoft answers 404 for it: read it once it is listed again
            settled[(sub_id, verb)] = (
                f"Microsoft no longer lists this subscription (since {gone[action_id]:%Y-%m-%d}):"
                " the interrupted attempt stays pending, settled once it is listed again"
            )
            continue
        try:
            live = pc.subscription(customer, sub_id)
        except ConnectorError as exc:
            settled[(sub_id, verb)] = f"an interrupted earlier attempt cannot be read yet: {exc}"
            continue
        done = reached(verb, live)
        if done:
            settled[(sub_id, verb)] = "done"
        with sessions.begin() as session:
            upsert_subscriptions(session, customer, [live], datetime.now(UTC), run)
            row = session.get_one(Action, action_id)
            row.result = "succeeded" if done else "failed"
            row.status_after = state_of(verb, live)
            row.error = None if done else "interrupted before Microsoft answered; not applied"
            _audit_attempt(session, row, actor, run.run_id, settled_after_interruption=True)
    return settled


def delisted_since(sessions: sessionmaker[Session], action_ids: list[int]) -> dict[int, datetime]:
    """The attempts whose subscription (or customer) Microsoft no longer lists, and since when.

    Such an attempt waits, pending, until it is listed again and can be read: settled
    blind, a suspension pcsync made would later pass for someone else's and never be undone.
    """
    if not action_ids:
        return {}
    since = func.coalesce(Subscription.delisted_at, Customer.delisted_at)
    with sessions() as session:
        rows = session.execute(
            select(Action.id, since)
            .join(Subscription, Subscription.id == Action.subscription_id, isouter=True)
            .join(Customer, Customer.id == Action.customer_id, isouter=True)
            .where(Action.id.in_(action_ids), since.is_not(None))
        )
        return {action_id: when for action_id, when in rows}


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


def attempt(
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
            row.status_after = state_of(change.action, outcome.after)
            upsert_subscriptions(
                session, change.customer_id, [outcome.after], datetime.now(UTC), run
            )
        else:
            row.result = "succeeded" if outcome.changed else "unchanged"
            row.status_before = state_of(change.action, outcome.before)
            row.status_after = state_of(change.action, outcome.after)
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
    if not reached(change.action, live):
        return None, None
    answer = "412 (etag changed)" if isinstance(exc, ConflictError) else "no answer"
    return StatusChange(live, live, None, changed=True), (
        f"{answer}; read back as {state_of(change.action, live)}: done"
    )
