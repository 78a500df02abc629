"""Azure plans handled as Microsoft documents: listed with their consumption, never cancelled.

Microsoft refuses to suspend an Azure plan while an Azure subscription in it is
active (900115); cancelling an Azure subscription is the partner's own call.
Against the simulator on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sync.collections.apply import execute_apply, prepare_apply
from sync.db.models import Action
from sync.errors import ApplyError
from sync.partner import connect
from tests.world import AS_OF, World


def _azure_plan(world: World, customer: str) -> dict[str, Any]:
    return next(s for s in world.subs_of(customer) if s.get("_azureEntitlements"))


def _cancel_azure_subscriptions(world: World, customer: str) -> None:
    """The partner cancels them by hand (POST …/azureEntitlements/{id}/cancel)."""
    for entitlement in _azure_plan(world, customer)["_azureEntitlements"]:
        entitlement["status"] = "canceled"


def _plan_patches(world: World, plan_id: str) -> int:
    return sum(
        1 for method, path, _ in world.sim.requests if method == "PATCH" and path.endswith(plan_id)
    )


def test_the_plan_lists_each_azure_subscription_with_its_unbilled_consumption(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    azure = _azure_plan(world, world.never)
    capsys.readouterr()
    assert world.cli("-v", "collections", "plan", "--as-of", AS_OF) == 0
    out = capsys.readouterr().out
    assert f"Azure plan Azure plan ({azure['id']}, active): 2 Azure subscription(s)" in out
    for entitlement in azure["_azureEntitlements"]:
        assert f"Azure subscription {entitlement['friendlyName']} ({entitlement['id']}): " in out
    assert "unbilled consumption since the last invoice" in out
    assert "cannot be suspended through the subscription API" in out
    assert "pcsync never cancels" in out
    assert "azureEntitlements/{azure subscription}/cancel" in out


def test_an_azure_plan_with_active_azure_subscriptions_is_listed_not_sent(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    azure = _azure_plan(world, never)
    others = [s["id"] for s in world.subs_of(never) if s is not azure]
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    capsys.readouterr()
    assert world.cli("collections", "apply") == 0  # the dry run
    out = capsys.readouterr().out
    assert "Azure plan not suspended: Azure subscription(s) still active" in out
    assert "900115" in out
    assert world.cli("collections", "apply", "--apply") == 0
    captured = capsys.readouterr()
    assert "rerun" not in captured.out + captured.err
    assert all(world.statuses()[sub] == "suspended" for sub in others)
    assert world.statuses()[azure["id"]] == "active"
    assert _plan_patches(world, azure["id"]) == 0  # nothing sent that Microsoft must refuse
    cancels = [p for m, p, _ in world.sim.requests if m == "POST" and p.endswith("/cancel")]
    assert cancels == []  # and pcsync cancelled nothing

    _cancel_azure_subscriptions(world, never)  # the partner's own decision
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.statuses()[azure["id"]] == "suspended"
    assert _plan_patches(world, azure["id"]) == 1


def test_a_refusal_that_cannot_succeed_is_refused_not_rerun(world: World) -> None:
    """Without the live read (Microsoft's state changed meanwhile), 900115 is met: refused."""
    never = world.never
    azure = _azure_plan(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    today = datetime.now(ZoneInfo(world.settings.schedule.timezone)).date()
    prepared = prepare_apply(world.settings, world.sessions, today)
    assert azure["id"] in {c.subscription_id for c in prepared.changes}

    def pc() -> Any:
        return connect(world.settings.partner_center)

    with pytest.raises(ApplyError) as raised:
        execute_apply(world.sessions, prepared, pc, "tester", today=today)
    message = str(raised.value)
    assert "refused 1 of" in message
    assert "900115" in message
    assert "rerun" not in message
    with world.sessions() as session:
        (row,) = session.scalars(select(Action).where(Action.subscription_id == azure["id"]))
        assert row.result == "refused"
    (entry,) = [e for e in world.audit(never) if e["subscription_id"] == azure["id"]]
    assert entry["details"]["result"] == "refused"

    again = prepare_apply(world.settings, world.sessions, today)
    assert azure["id"] not in {c.subscription_id for c in again.changes}
    (waiting,) = [w for w in again.waiting if "refused by Microsoft" in w.why]
    assert "not sent again under this approval" in waiting.why
    assert "900115" in waiting.why
