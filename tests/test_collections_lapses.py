"""An approval does not outlive a change of the facts it was given on.

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from sync.db.models import Approval
from tests.world import World


def test_an_approval_given_before_a_hold_does_not_suspend_after_the_release(
    world: World,
) -> None:
    """Approved, then held (a dispute) and released with no apply in between: the hold
    ended the approval; suspending needs a new one."""
    never = world.never
    until = (date.today() + timedelta(days=10)).isoformat()
    assert world.cli("collections", "approve", never, "--by", "ana") == 0
    hold = ["collections", "hold", never, "--until", until, "--reason", "disputed invoice"]
    assert world.cli(*hold, "--by", "ana") == 0
    assert world.cli("collections", "release", never, "--by", "bob") == 0
    assert world.cli("collections", "apply", "--apply", "--by", "bob") == 0
    assert world.patches() == 0  # the approval lapsed with the hold
    with world.engine.connect() as c:
        reasons = c.scalars(sa.select(Approval.revoked_reason)).all()
    assert len(reasons) == 1 and reasons[0] is not None and "hold" in reasons[0]
    assert "approval_lapsed" in [e["event"] for e in world.audit(never)]
    # A new approval after the release acts again.
    assert world.cli("collections", "approve", never, "--by", "bob") == 0
    with world.engine.connect() as c:
        open_ = c.scalar(
            sa.select(sa.func.count()).select_from(Approval).where(Approval.revoked_at.is_(None))
        )
    assert open_ == 1
