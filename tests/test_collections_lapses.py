"""An approval does not outlive a change of the facts it was given on.

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from sync.collections import plan_collections
from sync.db.models import Action, Approval
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
    assert len(reasons) == 1
    assert "hold" in str(reasons[0])
    assert "approval_lapsed" in [e["event"] for e in world.audit(never)]
    # A new approval after the release acts again.
    assert world.cli("collections", "approve", never, "--by", "bob") == 0
    with world.engine.connect() as c:
        open_ = c.scalar(
            sa.select(sa.func.count()).select_from(Approval).where(Approval.revoked_at.is_(None))
        )
    assert open_ == 1


def test_a_killed_suspension_is_undone_by_the_first_apply_after_the_customer_paid(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    """A run was killed after Microsoft suspended a subscription but before pcsync heard
    back (its attempt is left pending). The customer pays. The next apply settles the
    attempt as pcsync's suspension — so it must also reactivate it, in the same run,
    as a clean run would have: not report success and leave a paid customer offline."""
    never = world.never
    for sub in world.subs_of(never):  # its Azure plan may be suspended
        for entitlement in sub.get("_azureEntitlements", ()):
            entitlement["status"] = "canceled"
    assert world.cli("collections", "approve", never) == 0
    sub = world.subs_of(never)[0]
    sub["status"] = "suspended"  # Microsoft did it; the answer never reached pcsync
    with world.sessions.begin() as session:
        session.add(
            Action(
                customer_id=never,
                subscription_id=sub["id"],
                action="suspend",
                status_before="active",
                result="pending",
                requested_by="ana",
                requested_at=datetime.now(UTC),
            )
        )
    world.pay_everything(never)
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.statuses()[sub["id"]] == "active"


def test_an_approval_superseded_by_a_new_one_is_ended_in_the_audit_log(world: World) -> None:
    never = world.never
    assert world.cli("collections", "approve", never, "--by", "ana") == 0
    assert world.cli("collections", "approve", never, "--by", "bob", "--note", "again") == 0
    with world.engine.connect() as c:
        first, second = c.scalars(sa.select(Approval.id).order_by(Approval.id)).all()
    ended = [
        e
        for e in world.audit(never)
        if e["event"] != "approved" and e["details"].get("approval_id") == first
    ]
    assert [(e["event"], e["actor"]) for e in ended] == [("approval_superseded", "bob")]
    assert str(second) in str(ended[0]["details"]["reason"])


def _import(world: World, name: str, row: str) -> None:
    path = world.tmp / name
    path.write_text("customer,date,amount,currency,reference\n" + row + "\n")
    assert world.cli("payments", "import", str(path)) == 0


def test_a_payment_after_the_approval_lapses_it_even_when_a_voided_one_came_first(
    world: World,
) -> None:
    """Approved with a 10.00 cheque on the books; the cheque bounces (voided) and the
    customer then pays 5.00: the total paid fell, yet a payment came in since the
    approval, so it lapses and nothing is suspended."""
    never = world.never
    plan = plan_collections(world.settings, world.sessions, date.today(), store=False)
    cur = next(f.currency for f in plan.flags if f.customer_id == never and f.action == "suspend")
    today = date.today().isoformat()
    _import(world, "cheque.csv", f"{never},{today},10.00,{cur},CHQ-1")
    assert world.cli("collections", "approve", never, "--by", "ana") == 0
    assert world.cli("payments", "void", "CHQ-1", "--reason", "bounced", "--by", "ana") == 0
    _import(world, "wire.csv", f"{never},{today},5.00,{cur},WIRE-1")
    assert world.cli("collections", "apply", "--apply", "--by", "bob") == 0
    assert world.patches() == 0
    with world.engine.connect() as c:
        reasons = c.scalars(sa.select(Approval.revoked_reason)).all()
    assert len(reasons) == 1
    assert f"paid 5.00 {cur} since the approval" in str(reasons[0])
