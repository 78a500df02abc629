"""Collections against Microsoft's real behaviour: today only, ownership, lost answers, holds,
limits over time, sandboxed templates.

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.world import AS_OF, World


def _no_azure_refusal(world: World, customer: str) -> None:
    for sub in world.subs_of(customer):
        for entitlement in sub.get("_azureEntitlements", ()):
            entitlement["status"] = "canceled"


@pytest.mark.parametrize("as_of", [AS_OF, "2027-06-01"], ids=["past", "future"])
def test_apply_refuses_any_date_but_today(world: World, as_of: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    capsys.readouterr()
    assert world.cli("collections", "apply", "--as-of", as_of, "--apply") == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"pcsync: error: --as-of {as_of} is in the ")
    assert "acts on today" in error
    assert world.patches() == 0
    assert world.cli("collections", "apply", "--as-of", as_of) == 0  # a dry run may look
    assert world.patches() == 0


@pytest.mark.parametrize("command", ["approve", "notify"])
def test_approve_and_notify_refuse_a_future_date(world: World, command: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """A mistyped year must not send final notices, nor approve suspensions, for debts
    nobody owes yet; a past date (a round missed) is fine."""
    args = ["collections", command, *([world.never] if command == "approve" else [])]
    before = world.audit()
    assert world.cli(*args, "--as-of", "2027-06-01") == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("pcsync: error: --as-of 2027-06-01 is in the future: ")
    assert world.audit() == before  # nothing approved, no notice recorded
    assert world.cli(*args, "--as-of", AS_OF) == 0


def test_a_template_calling_os_popen_fails_in_the_sandbox(
    world: World, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    proof = tmp_path / "ran"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "suspend.txt.j2").write_text(
        "Subject: hi\n\n{{ cycler.__init__.__globals__.os.popen('touch " + str(proof) + "') }}\n"
    )
    (templates / "follow_up.txt.j2").write_text("Subject: hi\n\n{{ ''.__class__.__mro__ }}\n")
    world.configure(f'[notifications]\ntemplates_dir = "{templates}"\nout_dir = "{tmp_path}"')
    capsys.readouterr()
    assert world.cli("collections", "notify", "--as-of", AS_OF) == 2
    err = capsys.readouterr().err
    assert "notice template" in err
    assert "is unsafe" in err  # refused by the sandbox, not by chance
    assert not proof.exists()


def _suspend_never(world: World) -> list[str]:
    """pcsync suspends the customer that never pays; its subscriptions' ids."""
    _no_azure_refusal(world, world.never)
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    assert world.cli("collections", "apply", "--apply") == 0
    ids = [s["id"] for s in world.subs_of(world.never)]
    assert all(world.statuses()[sub] == "suspended" for sub in ids)
    return ids


def test_a_foreign_re_suspension_is_never_reactivated(world: World) -> None:
    ids = _suspend_never(world)
    theirs = ids[0]
    world.sim.change_subscription(world.never, theirs, "active")  # an admin restores it
    assert world.cli("sync", "--only", "subscriptions") == 0
    world.sim.change_subscription(world.never, theirs, "suspended")  # and suspends it by hand
    assert world.cli("sync", "--only", "subscriptions") == 0
    world.pay_everything(world.never)
    assert world.cli("collections", "apply", "--apply") == 0
    statuses = world.statuses()
    assert statuses[theirs] == "suspended"  # the admin's suspension, not pcsync's
    assert all(statuses[sub] == "active" for sub in ids[1:])
    reactivated = {e["subscription_id"] for e in world.audit() if e["event"] == "reactivate"}
    assert reactivated == set(ids[1:])


def test_a_lost_patch_answer_is_settled_as_done_and_later_reactivated(world: World) -> None:
    import sqlalchemy as sa

    from sync.db.models import Action

    _no_azure_refusal(world, world.never)
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    ids = [s["id"] for s in world.subs_of(world.never)]
    world.sim.config.lose_patch_answers = 1  # Microsoft applies the first PATCH, no answer
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.sim.config.lose_patch_answers == 0  # the loss happened
    assert world.patches() == len(ids) + 1  # the retry met the new etag (412)
    assert all(world.statuses()[sub] == "suspended" for sub in ids)
    with world.engine.connect() as c:
        results = c.execute(sa.select(Action.subscription_id, Action.result)).all()
    assert sorted(results) == sorted((sub, "succeeded") for sub in ids)
    (settled,) = [e for e in world.audit() if e["details"].get("settled")]
    assert "412" in settled["details"]["settled"]
    assert settled["subscription_id"] in ids

    world.pay_everything(world.never)
    assert world.cli("collections", "apply", "--apply") == 0
    assert all(world.statuses()[sub] == "active" for sub in ids)  # pcsync's, so restored


def test_a_patch_answer_lost_for_good_is_settled_from_the_live_status(world: World) -> None:
    # No retry at all: the PATCH's answer never comes, and pcsync reads the subscription back.
    assert world.settings.source is not None
    text = world.settings.source.read_text()
    world.settings.source.write_text(text.replace("max_retries = 8\n", "max_retries = 0\n", 1))
    world.configure("")
    _no_azure_refusal(world, world.never)
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    ids = [s["id"] for s in world.subs_of(world.never)]
    world.sim.config.lose_patch_answers = 1
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.sim.config.lose_patch_answers == 0
    assert world.patches() == len(ids)  # nothing sent twice
    (settled,) = [e for e in world.audit() if e["details"].get("settled")]
    assert settled["details"]["settled"].startswith("no answer")
    assert settled["details"]["settled"].endswith("read back as suspended: done")
    assert settled["details"]["result"] == "succeeded"

    world.pay_everything(world.never)
    assert world.cli("collections", "apply", "--apply") == 0
    assert all(world.statuses()[sub] == "active" for sub in ids)  # pcsync's, so restored


def test_a_hold_keeps_a_customer_at_none_until_its_date(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    today = date.today()
    until = (today + timedelta(days=10)).isoformat()
    assert world.cli("collections", "approve", never) == 0
    args = ["collections", "hold", never, "--until", until, "--reason", "disputed invoice"]
    assert world.cli(*args, "--by", "ana") == 0
    for day in (today.isoformat(), (today + timedelta(days=9)).isoformat()):
        plan = world._json("collections", "plan", "--as-of", day, "--json")
        flags = [f for f in plan["flags"] if f["customer_id"] == never]
        assert all(f["action"] == "none" for f in flags)
        assert flags[0]["reasons"][0] == f"on hold until {until} (by ana): disputed invoice"
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == 0  # the approval lapsed with the hold
    plan = world._json("collections", "plan", "--as-of", until, "--json")  # collections resume
    assert any(f["action"] == "suspend" for f in plan["flags"] if f["customer_id"] == never)
    assert world.cli("collections", "release", never, "--by", "bob") == 0
    plan = world._json("collections", "plan", "--json")
    assert any(f["action"] == "suspend" for f in plan["flags"] if f["customer_id"] == never)
    events = [(e["event"], e["actor"]) for e in world.audit(never)]
    assert ("hold", "ana") in events
    assert ("release", "bob") in events
    capsys.readouterr()
    assert world.cli(*args[:3], "--until", AS_OF, "--reason", "x") == 2  # not in the past
    assert "must end after today" in capsys.readouterr().err


def test_the_cumulative_limit_holds_across_two_applies(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    world.configure("[collections]\nmax_suspend_customers = 1\nmax_suspended_total = 1")
    first, second = world.suspend_customers()
    for customer in (first, second):
        _no_azure_refusal(world, customer)
    assert world.cli("collections", "approve", first) == 0
    assert world.cli("collections", "apply", "--apply") == 0  # one customer: within both
    suspended = world.statuses()
    assert all(suspended[s["id"]] == "suspended" for s in world.subs_of(first))
    assert world.cli("collections", "approve", second) == 0
    capsys.readouterr()
    patches = world.patches()
    assert world.cli("collections", "apply", "--apply") == 1  # one more would make two
    err = capsys.readouterr().err
    assert "max_suspended_total = 1" in err
    assert "nothing was changed" in err
    assert world.patches() == patches
    assert world.statuses() == suspended
