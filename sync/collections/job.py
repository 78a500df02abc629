"""The collections round the daemon runs (and ``pcsync collections notify``).

It stores today's plan in the flag history, records the approvals that lapsed
under it (revoked with the reason, audited: the lapse step that plain queries
such as ``collections plan`` leave out) and sends the notices that are due; its
summary is what the daemon posts to the webhook. It never suspends:
suspension waits for an admin's approval and ``pcsync collections apply``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter
from connectors.partner_center.errors import ConnectorError
from sync.collections.approvals import lapse_approvals
from sync.collections.notice_parts import NoticeExtras
from sync.collections.notices import NoticeOutcome, send_notices
from sync.collections.plan import CollectionsPlan, plan_collections
from sync.config import Settings
from sync.partner import connect
from sync.runtime.runs import Trigger, recorded_run

__all__ = ["RoundResult", "billing_addresses", "run_collections_round"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundResult:
    """The plan and the notices of one collections round."""

    run_id: int
    plan: CollectionsPlan
    notices: NoticeOutcome

    def summary(self) -> str:
        """One paragraph for the webhook and the log."""
        actions = Counter(flag.action for flag in self.plan.flags)
        n = self.notices
        return (
            f"pcsync collections as of {self.plan.as_of}: {actions['suspend']} to suspend "
            f"(needs approval), {actions['follow_up']} to follow up, {actions['reactivate']} to "
            f"reactivate; notices: {len(n.sent)} sent, {len(n.written)} written as .eml, "
            f"{len(n.no_recipient)} without an address"
            + (f", {len(n.bad_address)} skipped for a bad address" if n.bad_address else "")
        )


def billing_addresses(settings: Settings) -> Callable[[str], str | None]:
    """Look customers' billing addresses up in Partner Center, connecting on first use."""

    @cache
    def client() -> PartnerCenter:
        return connect(settings.partner_center)

    @cache
    def address(customer_id: str) -> str | None:
        try:
            return client().billing_email(customer_id)
        except ConnectorError as exc:
            log.warning("billing address of %s unavailable: %s", customer_id, exc)
            return None

    return address


def run_collections_round(
    settings: Settings,
    sessions: sessionmaker[Session],
    as_of: date,
    actor: str,
    trigger: Trigger = "manual",
    recipient_for: Callable[[str], str | None] | None = None,
) -> RoundResult:
    """Plan (stored as flag history), lapse the approvals that no longer hold, and send
    the notices that are due."""
    with recorded_run(sessions, "collections", trigger, {"as_of": as_of.isoformat()}) as run:
        plan = plan_collections(settings, sessions, as_of)
        for flag in plan.flags:
            run.count("flags", flag.action)
        with sessions.begin() as session:
            lapsed = lapse_approvals(session, plan, actor, datetime.now(UTC))
        if lapsed:
            run.count("approvals", "lapsed", len(lapsed))
        notices = send_notices(
            settings.notifications,
            sessions,
            plan,
            recipient_for or billing_addresses(settings),
            actor,
            NoticeExtras(settings, sessions, as_of),
        )
        run.count("notices", "sent", len(notices.sent))
        run.count("notices", "written", len(notices.written))
        run.count("notices", "no_recipient", len(notices.no_recipient))
        run.count("notices", "bad_address", len(notices.bad_address))
        result = RoundResult(run.run_id, plan, notices)
    return result
