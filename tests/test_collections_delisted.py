"""Collections and a customer Microsoft no longer lists (the partner relationship ended).

Its subscriptions are out of the partner's reach: the plan neither suspends nor
reactivates it, saying why, and an apply sends nothing for it — not even an
auto-renew change. Against the simulator on SQLite and PostgreSQL, through the CLI.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from sync.db.models import Action, Subscription
from tests.test_collections import _pending_suspension
from tests.world import AS_OF, World


def _delist(world: World, customer: str) -> None:
    world.sim.data.unlisted.add(customer)
    assert world.cli("sync", "--only", "customers") == 0


def _flags_of(world: World, customer: str) -> list[dict[str, Any]]:
    plan = world._json("collections", "plan", "--as-of", AS_OF, "--json")
    return [f for f in plan["flags"] if f["customer_id"] == customer]


def _asked_about(world: World, customer: str, since: int) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in world.sim.requests[since:] if f"/customers/{customer}/" in p]


def _no_azure_refusal(world: World, customer: str) -> None:
    for sub in world.subs_of(customer):
        for entitlement in sub.get("_azureEntitlements", ()):
            entitlement["status"] = "canceled"


def test_a_delisted_customer_at_the_suspend_stage_is_not_suspended(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    _delist(world, never)
    flags = _flags_of(world, never)
    assert flags
    assert all(f["action"] == "none" for f in flags)
    assert all(f["reasons"][0].startswith("no longer listed by Microsoft (since ") for f in flags)
    assert all("cannot suspend its subscriptions" in f["reasons"][0] for f in flags)
    assert never not in world.suspend_customers()

    before = world.statuses()
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    assert world.patches() == 0
    assert _asked_about(world, never, mark) == []  # not even its subscriptions read
    assert world.statuses() == before


def test_a_delisted_customer_that_paid_is_not_reactivated(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    suspended = world.statuses()
    patches = world.patches()
    assert patches > 0
    world.pay_everything(never)
    _delist(world, never)
    flags = _flags_of(world, never)
    assert flags
    assert all(f["action"] == "none" for f in flags)
    assert any("cannot reactivate its subscriptions" in f["reasons"][0] for f in flags)

    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == patches  # nothing sent: Microsoft no longer lists it
    assert world.statuses() == suspended


def test_a_delisted_customer_gets_no_auto_renew_change(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    customer = world.sim.data.customers[10]["id"]  # at follow_up
    sub = next(s for s in world.subs_of(customer) if s.get("autoRenewEnabled"))
    sub["commitmentEndDate"] = f"{date.today() + timedelta(days=5)}T00:00:00Z"
    assert world.cli("sync", "--only", "subscriptions") == 0
    assert world.cli("collections", "approve", customer, "--stop-renewal", "--as-of", AS_OF) == 0
    _delist(world, customer)
    plan = world._json("collections", "plan", "--json")
    assert all(a["customer_id"] != customer for a in plan["stop_renewal"])

    capsys.readouterr()
    assert world.cli("collections", "apply") == 0  # the dry run says why
    out = capsys.readouterr().out
    assert f"({customer}): no longer listed by Microsoft (since " in out
    assert "pcsync changes none of its subscriptions" in out
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == 0
    assert sub["autoRenewEnabled"] is True


def _move_away(world: World, customer: str, among: set[str] | None = None) -> str:
    """One active subscription of this customer (or one of ``among``) leaves Microsoft's
    listing; a sync delists it."""
    subs = world.subs_of(customer)
    gone = next(s for s in subs if (s["id"] in among if among else s["status"] == "active"))
    subs.remove(gone)
    assert world.cli("sync", "--only", "subscriptions") == 0
    return str(gone["id"])


def _patched(world: World, since: int) -> set[str]:
    return {
        p.split("?")[0].rsplit("/", 1)[1] for m, p, _ in world.sim.requests[since:] if m == "PATCH"
    }


def test_a_subscription_microsoft_no_longer_lists_is_not_suspended(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    gone = _move_away(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    patched = _patched(world, mark)
    assert patched  # its listed subscriptions were suspended
    assert gone not in patched


def test_a_subscription_microsoft_no_longer_lists_is_not_reactivated(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    gone = _move_away(world, never, _patched(world, mark))  # one pcsync suspended
    world.pay_everything(never)
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply") == 0
    patched = _patched(world, mark)
    assert patched  # the others pcsync suspended were reactivated
    assert gone not in patched


def _delisted_in_mirror(world: World) -> set[str]:
    with world.sessions() as session:
        rows = session.execute(
            sa.select(Subscription.id).where(Subscription.delisted_at.is_not(None))
        )
        return set(rows.scalars())


def _asked_for(world: World, sub_id: str, since: int) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in world.sim.requests[since:] if f"/subscriptions/{sub_id}" in p]


def test_a_subscription_gone_since_the_sync_is_delisted_by_the_refresh_and_not_suspended(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    subs = world.subs_of(never)
    gone = next(s for s in subs if s["status"] == "active")
    subs.remove(gone)  # moved away after the last sync: only the apply's refresh can see it
    assert gone["id"] not in _delisted_in_mirror(world)
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    assert _patched(world, mark)  # its listed subscriptions were suspended
    assert _asked_for(world, gone["id"], mark) == []  # neither read nor changed
    assert _delisted_in_mirror(world) == {gone["id"]}


def test_a_subscription_gone_since_the_sync_is_delisted_by_the_refresh_and_not_reactivated(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    suspended = _patched(world, mark)
    subs = world.subs_of(never)
    gone = next(s for s in subs if s["id"] in suspended)  # one pcsync suspended
    subs.remove(gone)  # moved away after the last sync
    world.pay_everything(never)
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply") == 0
    assert _patched(world, mark) == suspended - {gone["id"]}  # the others were reactivated
    assert _asked_for(world, gone["id"], mark) == []
    assert _delisted_in_mirror(world) == {gone["id"]}


def _results(world: World, sub_id: str) -> list[str]:
    with world.sessions() as session:
        query = sa.select(Action.result).where(Action.subscription_id == sub_id)
        return list(session.scalars(query.order_by(Action.id)))


def test_an_interrupted_suspension_of_a_delisted_subscription_waits_and_is_undone_once_listed(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    """The killed run's PATCH had reached Microsoft; the subscription then left the listing
    for a while. Settled blind, the suspension would pass for someone else's once it is
    listed again, and the customer who paid would stay suspended."""
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    sub = next(s for s in world.subs_of(never) if s["status"] == "active")
    _pending_suspension(world, sub["id"])
    sub["status"] = "suspended"  # the PATCH had taken effect
    gone = _move_away(world, never, {sub["id"]})
    mark = len(world.sim.requests)
    capsys.readouterr()
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0  # waits, shown
    out = capsys.readouterr().out
    assert f"suspend {gone} (interrupted earlier): Microsoft no longer lists" in out
    assert "stays pending, settled once it is listed again" in out
    assert _patched(world, mark)  # its listed subscriptions were suspended
    assert _asked_for(world, gone, mark) == []  # neither read nor changed
    assert _results(world, gone) == ["pending"]

    world.subs_of(never).append(sub)  # listed again
    assert world.cli("sync", "--only", "subscriptions") == 0
    world.pay_everything(never)
    mark = len(world.sim.requests)
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    assert _results(world, gone)[0] == "succeeded"  # pcsync's suspension, read back
    assert gone in _patched(world, mark)  # and undone now that the customer paid
    assert sub["status"] == "active"


def test_an_interrupted_attempt_no_change_is_planned_for_is_not_hidden_by_a_success(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    """Nothing is planned for the customer (not approved), but an earlier run was killed
    while suspending one of its subscriptions, which Microsoft does not answer for now."""
    never = world.never
    sub_id = next(s["id"] for s in world.subs_of(never) if s["status"] == "active")
    _pending_suspension(world, sub_id)
    world.sim.config.unreadable_subscriptions.add(sub_id)  # 404, still listed
    capsys.readouterr()
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 1
    captured = capsys.readouterr()
    assert f"suspend {sub_id} (interrupted earlier): an interrupted earlier attempt" in captured.out
    assert "1 interrupted attempt(s) of an earlier run could not be settled" in captured.err
    assert _results(world, sub_id) == ["pending"]  # still to be settled, never retried blind

    world.sim.config.unreadable_subscriptions.discard(sub_id)  # Microsoft answers again
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    assert _results(world, sub_id)[0] == "failed"  # it had not been suspended: settled
