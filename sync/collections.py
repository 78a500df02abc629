"""``pcsync collections plan``: the policy applied to today's ledgers (nothing is changed)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.policy import Flag, Policy, Stage, plan
from reconciliation.result import reconcile
from sync.config import Settings
from sync.db.models import Action
from sync.reconcile import load_inputs

__all__ = ["plan_collections", "policy_from_settings"]


def policy_from_settings(settings: Settings) -> Policy:
    """The validated ``[collections]`` section as a policy."""
    collections = settings.collections
    return Policy(
        stages=[Stage(s.name, s.days_overdue, s.action, s.min_amount) for s in collections.stages],
        min_overdue_amount=collections.min_overdue_amount,
        exempt_customers=frozenset(c.lower() for c in collections.exempt_customers),
    )


def _suspended_by_pcsync(session: Session) -> set[str]:
    """Customers with a subscription whose latest successful pcsync action was a suspension."""
    latest = (
        select(Action.subscription_id, func.max(Action.id).label("last"))
        .where(Action.result == "succeeded")
        .group_by(Action.subscription_id)
        .subquery()
    )
    rows = session.execute(
        select(Action.customer_id)
        .join(latest, Action.id == latest.c.last)
        .where(Action.action == "suspend")
    )
    return {customer for (customer,) in rows}


def plan_collections(
    settings: Settings, sessions: sessionmaker[Session], as_of: date
) -> list[Flag]:
    """Flags per customer and currency as of a date, from a fresh reconciliation."""
    with sessions() as session:
        inputs = load_inputs(session, settings, as_of)
        suspended = _suspended_by_pcsync(session)
    result = reconcile(inputs)
    return plan(result.ledgers, policy_from_settings(settings), inputs.customers, suspended)
