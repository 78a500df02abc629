"""The renewal guard: new-commerce terms a customer who is not paying is about to renew,
or may still cancel (Microsoft's seven-day window after a purchase or renewal).

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors.simulator.data import Dataset
from sync.collections import plan_collections
from sync.collections.renewals import renewal_guard
from sync.db.models import LineItem, UnbilledLineItem
from tests.world import AS_OF, World

TODAY = date.fromisoformat(AS_OF)


def _customer(world: World, index: int) -> str:
    return world.sim.data.customers[index]["id"]  # type: ignore[no-any-return]


def _sub(world: World, customer: str, sub_id: str) -> dict[str, Any]:
    return next(s for s in world.subs_of(customer) if s["id"] == sub_id)


def _guard_lines(world: World, capsys) -> list[str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert world.cli("-v", "collections", "plan", "--as-of", AS_OF) == 0
    return [
        line.strip() for line in capsys.readouterr().out.splitlines() if "renewal guard" in line
    ]


def test_the_simulator_opens_a_cancellation_window_on_each_renewal() -> None:
    data = Dataset(anchor=TODAY)
    for subs in data.subscriptions.values():
        for sub in subs:
            if sub.get("autoRenewEnabled") is None:
                continue  # usage-based: no term
            end = date.fromisoformat(sub["commitmentEndDate"][:10])
            term_start = date(end.year - 1, end.month, end.day) + timedelta(days=1)
            window = date.fromisoformat(sub["cancellationAllowedUntilDate"][:10])
            assert (window - term_start).days == 7, sub["id"]


def test_a_follow_up_customer_renewing_soon_is_listed_with_the_next_terms_cost(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(world, 10)  # at follow_up (reminder)
    renewing = next(
        s for s in world.subs_of(customer) if s["commitmentEndDate"].startswith("2026-12-05")
    )
    lines = [line for line in _guard_lines(world, capsys) if renewing["id"] in line]
    assert len(lines) == 1
    q = renewing["quantity"]
    per_month = Decimal("6.00") * q
    assert "auto-renews on 2026-12-06 (term ends 2026-12-05, in 10 days)" in lines[0]
    assert f"next term {q} × 6.00 USD = {per_month:.2f} USD per monthly period" in lines[0]
    assert f"{per_month * 12:.2f} USD for the P1Y term" in lines[0]
    assert "cancellation window" not in lines[0]


def test_a_subscription_inside_its_cancellation_window_is_listed_with_the_refund(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(world, 2)  # at follow_up (reminder)
    sub = next(s for s in world.subs_of(customer) if s.get("autoRenewEnabled"))
    world.sim.data.renew_subscription(customer, sub["id"], date(2026, 11, 22))
    assert world.cli("sync", "--only", "subscriptions") == 0
    lines = [line for line in _guard_lines(world, capsys) if sub["id"] in line]
    assert len(lines) == 1
    assert "inside Microsoft's cancellation window until 2026-11-29" in lines[0]
    # This month's charge (unbilled) covers today: 6 of its 30 days are left.
    assert "cancelling now would refund about" in lines[0]
    assert "(prorated: 6 of 30 days of a" in lines[0]
    assert "auto-renews" not in lines[0]  # the next renewal is a year away


def test_the_refund_is_said_to_be_unknown_when_no_charge_covers_today(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(world, 10)
    sub = next(s for s in world.subs_of(customer) if s.get("autoRenewEnabled"))
    world.sim.data.renew_subscription(customer, sub["id"], date(2026, 11, 22))
    assert world.cli("sync", "--only", "subscriptions") == 0
    with world.sessions.begin() as session:  # no charge of it billed or unbilled yet
        for model in (LineItem, UnbilledLineItem):
            session.execute(sa.delete(model).where(model.subscription_id == sub["id"]))
    lines = [line for line in _guard_lines(world, capsys) if sub["id"] in line]
    assert len(lines) == 1
    assert "the refund cannot be derived: no billed or unbilled charge covers today" in lines[0]


def test_a_customer_at_stage_none_lists_nothing(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    # Customer 7 has a term ending in 15 days that auto-renews, customer 1 a subscription
    # renewed 2026-11-20 (inside its cancellation window): both pay, so no stage.
    customers = {_customer(world, 7), _customer(world, 1)}
    with world.sessions() as session:
        named = {item.customer_id for item in renewal_guard(session, customers, TODAY, 30)}
    assert named == customers  # the guard would name them, had it been asked
    plan = plan_collections(world.settings, world.sessions, TODAY, store=False)
    for customer in customers:
        assert all(f.action == "none" for f in plan.for_customer(customer))
        assert not [r for f in plan.for_customer(customer) for r in f.reasons if "renewal" in r]
    lines = _guard_lines(world, capsys)
    assert lines  # customers at follow_up and suspend stages have theirs
    assert not any(
        sub["id"] in line for c in customers for sub in world.subs_of(c) for line in lines
    )
