"""A hold sets a customer's collections stage aside; it is not payment.

While held, nothing pcsync undoes on payment is undone: auto-renew it turned
off stays off, and a suspension it made stays, even when a credit in another
currency would otherwise flag the customer for reactivation. Against the
simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from datetime import date, timedelta

from sync.collections import plan_collections
from tests.test_collections_renewals import _customer, _renewing_soon
from tests.world import AS_OF, World


def _hold(world: World, customer: str) -> None:
    until = (date.today() + timedelta(days=10)).isoformat()
    hold = ["collections", "hold", customer, "--until", until, "--reason", "disputed"]
    assert world.cli(*hold, "--by", "ana") == 0


def test_a_hold_does_not_turn_auto_renew_back_on_for_an_unpaid_customer(world: World) -> None:
    customer = _customer(world, 10)  # at follow_up, not paying
    sub = _renewing_soon(world, customer)
    assert world.cli("collections", "approve", customer, "--stop-renewal", "--as-of", AS_OF) == 0
    assert world.cli("collections", "apply", "--apply") == 0
    assert sub["autoRenewEnabled"] is False
    _hold(world, customer)  # nothing paid
    assert world.cli("collections", "apply", "--apply") == 0
    # Restored only once the customer has paid: the term would renew while unpaid.
    assert sub["autoRenewEnabled"] is False


def test_a_hold_does_not_reactivate_an_unpaid_customer_with_a_credit_in_another_currency(
    world: World,
) -> None:
    never = world.never
    plan = plan_collections(world.settings, world.sessions, date.today(), store=False)
    cur = next(f.currency for f in plan.flags if f.customer_id == never and f.action == "suspend")
    other = "EUR" if cur != "EUR" else "GBP"
    for sub in world.subs_of(never):
        for entitlement in sub.get("_azureEntitlements", ()):
            entitlement["status"] = "canceled"  # so its Azure plan may be suspended
    assert world.cli("collections", "approve", never, "--by", "ana") == 0
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    suspended = [s["id"] for s in world.subs_of(never) if world.statuses()[s["id"]] == "suspended"]
    assert suspended
    # A small payment in another currency: a ledger there with nothing owed (a credit).
    path = world.tmp / "other.csv"
    path.write_text(
        "customer,date,amount,currency,reference\n"
        f"{never},{date.today().isoformat()},1.00,{other},OTHER-1\n"
    )
    assert world.cli("payments", "import", str(path)) == 0
    _hold(world, never)  # the unpaid bill is disputed, not paid
    assert world.cli("collections", "apply", "--apply", "--by", "bob") == 0
    assert [s for s in suspended if world.statuses()[s] == "suspended"] == suspended
    flags = plan_collections(world.settings, world.sessions, date.today(), store=False)
    assert [f.action for f in flags.for_customer(never)] == ["none", "none"]
