"""The renewal guard: new-commerce terms a customer who is not paying is about to renew,
or may still cancel (Microsoft's seven-day window after a purchase or renewal).

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors.simulator.data import Dataset
from sync.collections import plan_collections
from sync.collections.renewals import renewal_guard
from sync.db.models import Action, LineItem, SubscriptionStatusChange, UnbilledLineItem
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


# -- stop_renewal: approved, applied, limited, audited, restored -------------------------


def _renewing_soon(world: World, customer: str) -> dict[str, Any]:
    """One of the customer's licences, its term ending five days from today (Microsoft)."""
    sub = next(s for s in world.subs_of(customer) if s.get("autoRenewEnabled"))
    sub["commitmentEndDate"] = f"{date.today() + timedelta(days=5)}T00:00:00Z"
    assert world.cli("sync", "--only", "subscriptions") == 0
    return sub


def _actions(world: World, verb: str) -> list[Action]:
    with world.sessions() as session:
        return list(session.scalars(sa.select(Action).where(Action.action == verb)))


def _stop(world: World, capsys) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    customer = _customer(world, 10)  # at follow_up
    sub = _renewing_soon(world, customer)
    assert world.cli("collections", "approve", customer, "--stop-renewal", "--as-of", AS_OF) == 0
    capsys.readouterr()
    assert world.cli("collections", "apply") == 0  # the dry run
    out = capsys.readouterr().out
    assert "stop_renewal" in out
    assert f"[{sub['id']}], now auto-renew on" in out
    assert "stopping the renewals of 1" in out
    assert world.patches() == 0
    assert world.cli("collections", "apply", "--apply") == 0
    return customer, sub


def _plan(world: World, capsys, *args: str) -> str:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert world.cli("collections", "plan", *args) == 0
    return capsys.readouterr().out  # type: ignore[no-any-return]


def test_the_plan_shows_stop_renewal_actions_and_their_approvals(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(world, 10)  # at follow_up
    sub = _renewing_soon(world, customer)
    [line] = [line for line in _plan(world, capsys).splitlines() if sub["id"] in line]
    assert line.strip().startswith("stop_renewal")
    assert f"not approved: pcsync collections approve {customer} --stop-renewal" in line
    document = json.loads(_plan(world, capsys, "--json"))
    [action] = [a for a in document["stop_renewal"] if a["subscription_id"] == sub["id"]]
    assert (action["customer_id"], action["approval"]) == (customer, None)
    assert action["term_ends"] == sub["commitmentEndDate"][:10]

    assert world.cli("collections", "approve", customer, "--stop-renewal", "--by", "ana") == 0
    assert world.cli("collections", "approve", world.never, "--by", "bob") == 0
    [line] = [line for line in _plan(world, capsys).splitlines() if sub["id"] in line]
    assert "approved by ana until " in line
    document = json.loads(_plan(world, capsys, "--json"))
    [action] = [a for a in document["stop_renewal"] if a["subscription_id"] == sub["id"]]
    assert action["approval"]["approved_by"] == "ana"
    assert action["approval"]["kind"] == "stop_renewal"
    kinds = {(a["customer_id"], a["kind"], a["approved_by"]) for a in document["approvals"]}
    assert kinds == {(customer, "stop_renewal", "ana"), (world.never, "suspend", "bob")}
    [suspend] = [
        line
        for line in _plan(world, capsys).splitlines()
        if line.strip().startswith("suspend") and "Litware" in line
    ]
    assert "approved by bob until " in suspend

    assert world.cli("collections", "apply", "--apply") == 0  # stopped: pcsync's to restore
    world.pay_everything(customer)
    document = json.loads(_plan(world, capsys, "--json"))
    assert all(a["customer_id"] != customer for a in document["stop_renewal"])
    [restore] = document["restore_renewal"]
    assert (restore["subscription_id"], restore["approval"]) == (sub["id"], None)
    assert "no approval needed" in _plan(world, capsys)


def test_stop_renewal_needs_a_follow_up_or_suspend_stage(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    paying = _customer(world, 7)
    assert world.cli("collections", "approve", paying, "--stop-renewal", "--as-of", AS_OF) != 0
    assert "not flagged follow_up or suspend" in capsys.readouterr().err
    # And a suspension approval is no stop_renewal approval: nothing sent without one.
    customer = _customer(world, 10)
    _renewing_soon(world, customer)
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == 0


def test_stop_renewal_is_approved_applied_audited_and_restored_once_paid(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    customer, sub = _stop(world, capsys)
    assert sub["autoRenewEnabled"] is False
    assert sub["status"] == "active"
    [row] = _actions(world, "stop_renewal")
    assert (row.result, row.status_before, row.status_after) == (
        "succeeded",
        "auto-renew on",
        "auto-renew off",
    )
    assert row.approval_id is not None
    events = [e for e in world.audit(customer) if e["event"] == "stop_renewal"]
    assert events
    assert events[-1]["subscription_id"] == sub["id"]

    patches = world.patches()
    assert world.cli("collections", "apply", "--apply") == 0  # still unpaid: stays off
    assert world.patches() == patches
    assert sub["autoRenewEnabled"] is False

    world.pay_everything(customer)
    assert world.cli("collections", "apply", "--apply") == 0
    assert sub["autoRenewEnabled"] is True
    [restored] = _actions(world, "restore_renewal")
    assert (restored.result, restored.approval_id) == ("succeeded", None)
    assert world.cli("collections", "apply", "--apply") == 0  # nothing more to restore
    assert len(_actions(world, "restore_renewal")) == 1


def _history(world: World, sub_id: str) -> list[tuple[object, ...]]:
    with world.engine.connect() as c:
        return [
            tuple(row)
            for row in c.execute(
                sa.select(
                    SubscriptionStatusChange.old_status,
                    SubscriptionStatusChange.new_status,
                    SubscriptionStatusChange.old_auto_renew,
                    SubscriptionStatusChange.new_auto_renew,
                )
                .where(SubscriptionStatusChange.subscription_id == sub_id)
                .order_by(SubscriptionStatusChange.id)
            )
        ]


def test_a_sync_records_auto_renew_changes_in_the_history(world: World) -> None:
    customer = _customer(world, 7)
    sub = next(s for s in world.subs_of(customer) if s.get("autoRenewEnabled"))
    assert _history(world, sub["id"]) == [(None, "active", None, True)]  # first sight
    sub["autoRenewEnabled"] = False  # someone, in the portal
    assert world.cli("sync", "--only", "subscriptions") == 0
    sub["autoRenewEnabled"] = True
    assert world.cli("sync", "--only", "subscriptions") == 0
    assert world.cli("sync", "--only", "subscriptions") == 0  # nothing changed: no row
    assert _history(world, sub["id"]) == [
        (None, "active", None, True),
        ("active", "active", True, False),
        ("active", "active", False, True),
    ]


def test_auto_renew_someone_turned_on_and_off_again_is_no_longer_pcsyncs(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    customer, sub = _stop(world, capsys)
    assert sub["autoRenewEnabled"] is False  # pcsync's
    sub["autoRenewEnabled"] = True  # an admin turns it back on
    assert world.cli("sync", "--only", "subscriptions") == 0
    sub["autoRenewEnabled"] = False  # and off again, by hand: their choice now
    assert world.cli("sync", "--only", "subscriptions") == 0
    world.pay_everything(customer)
    capsys.readouterr()
    assert world.cli("collections", "plan", "--json") == 0
    assert json.loads(capsys.readouterr().out)["restore_renewal"] == []
    patches = world.patches()
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == patches
    assert sub["autoRenewEnabled"] is False
    assert _actions(world, "restore_renewal") == []


def test_auto_renew_someone_else_turned_off_is_not_turned_on(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(world, 10)
    sub = next(s for s in world.subs_of(customer) if s.get("autoRenewEnabled"))
    sub["autoRenewEnabled"] = False  # the partner's own choice, in the portal
    assert world.cli("sync", "--only", "subscriptions") == 0
    world.pay_everything(customer)
    assert world.cli("collections", "apply", "--apply") == 0
    assert sub["autoRenewEnabled"] is False
    assert _actions(world, "restore_renewal") == []


def test_stop_renewal_counts_in_the_per_apply_limits(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    world.configure("[collections]\nmax_suspend_customers = 0")
    customer = _customer(world, 10)
    sub = _renewing_soon(world, customer)
    assert world.cli("collections", "approve", customer, "--stop-renewal", "--as-of", AS_OF) == 0
    capsys.readouterr()
    assert world.cli("collections", "apply", "--apply") != 0
    assert "would suspend or stop the renewals of 1 customers" in capsys.readouterr().err
    assert world.patches() == 0
    assert sub["autoRenewEnabled"] is True


def test_reactivation_restores_auto_renew_as_it_was_before_the_suspension(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    for s in world.subs_of(never):
        for entitlement in s.get("_azureEntitlements", ()):
            entitlement["status"] = "canceled"
    licences = [s for s in world.subs_of(never) if s["billingType"] == "license"]
    licences[0]["autoRenewEnabled"] = False  # off before pcsync came: stays off
    assert world.cli("sync", "--only", "subscriptions") == 0
    before = {s["id"]: s["autoRenewEnabled"] for s in licences}
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    assert world.cli("collections", "apply", "--apply") == 0
    assert all(s["status"] == "suspended" and s["autoRenewEnabled"] is False for s in licences)
    suspensions = {e["subscription_id"]: e for e in world.audit(never) if e["event"] == "suspend"}
    assert {k: suspensions[k]["details"]["auto_renew_before"] for k in before} == before

    world.pay_everything(never)
    capsys.readouterr()
    assert world.cli("collections", "apply", "--apply") == 0
    assert all(s["status"] == "active" for s in licences)
    assert {s["id"]: s["autoRenewEnabled"] for s in licences} == before
    restored = {a.subscription_id for a in _actions(world, "restore_renewal")}
    assert restored == {k for k, on in before.items() if on}


def test_the_next_terms_cost_skips_a_later_line_at_price_zero(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    """A free line billed later (price 0.00) is not the next term's price: on SQLite, where
    amounts are stored as text, ``unit_price > 0`` compared '0.00' > '0' as text."""
    customer = _customer(world, 10)
    renewing = next(
        s for s in world.subs_of(customer) if s["commitmentEndDate"].startswith("2026-12-05")
    )
    with world.sessions.begin() as session:
        line = session.scalars(
            sa.select(LineItem)
            .where(LineItem.subscription_id == renewing["id"])
            .order_by(LineItem.charge_end_date.desc())
        ).first()
        assert line is not None
        assert line.charge_end_date is not None
        values = {
            c.key: getattr(line, c.key) for c in sa.inspect(LineItem).column_attrs if c.key != "id"
        }
        values.update(
            unit_price=Decimal("0.00"),
            subtotal=Decimal("0.00"),
            tax_total=Decimal("0.00"),
            total_for_customer=Decimal("0.00"),
            charge_end_date=line.charge_end_date + timedelta(days=1),
            content_hash="f" * 64,
        )
        session.add(LineItem(**values))
    lines = [line for line in _guard_lines(world, capsys) if renewing["id"] in line]
    assert len(lines) == 1
    assert f"next term {renewing['quantity']} × 6.00 USD" in lines[0]
