"""Approvals, apply (suspend / reactivate), safety limits, audit and flag history.

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.db.models import Action, Approval, CollectionFlag
from tests.world import AS_OF, World


def _no_azure_refusal(world: World, customer: str) -> None:
    # The customer's Azure subscriptions were cancelled, so its Azure plan may be suspended.
    for sub in world.subs_of(customer):
        for entitlement in sub.get("_azureEntitlements", ()):
            entitlement["status"] = "canceled"


def _pending_suspension(world: World, subscription_id: str) -> None:
    """What a run killed while Microsoft was suspending the subscription leaves behind."""
    with world.sessions.begin() as session:
        session.add(
            Action(
                customer_id=world.never,
                subscription_id=subscription_id,
                action="suspend",
                status_before="active",
                result="pending",
                requested_by="ana",
                requested_at=datetime.now(UTC),
            )
        )


def test_dry_run_changes_nothing(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF, "--by", "ana") == 0
    before = world.statuses()
    flags = sa.select(sa.func.count()).select_from(CollectionFlag.__table__)
    with world.engine.connect() as c:
        flags_before = c.scalar(flags)
    assert world.cli("collections", "apply", "--as-of", "2027-06-01") == 0  # any date, looked at
    assert world.cli("collections", "apply", "--as-of", AS_OF) == 0
    out = capsys.readouterr().out.split("collections apply as of")[-1]
    subs = world.subs_of(world.never)
    active = [s["id"] for s in subs if s["status"] == "active" and not s.get("_azureEntitlements")]
    assert active
    assert all(f"[{sub}], now active" in out for sub in active)
    # The Azure plan has active Azure subscriptions: listed as waiting, not sent.
    assert "Azure plan not suspended: Azure subscription(s) still active" in out
    assert "dry run: nothing changed" in out
    assert world.patches() == 0
    assert world.statuses() == before
    with world.engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(Action.__table__)) == 0
        assert c.scalar(flags) == flags_before  # nor the flag history
    assert world.cli("collections", "plan", "--as-of", AS_OF) == 0
    plan = capsys.readouterr().out.splitlines()
    assert any("approved by ana until" in line for line in plan)
    assert any(line.endswith("— not approved") for line in plan)  # the other suspend customer


def test_apply_suspends_the_approved_then_payment_reactivates_exactly_those(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    # Someone else suspended one of its subscriptions: pcsync must leave that one alone.
    theirs = world.subs_of(never)[0]
    theirs["status"] = "suspended"
    assert world.cli("sync", "--only", "subscriptions") == 0
    unapproved = [c for c in world.suspend_customers() if c != never]
    assert unapproved, "the simulator has a second customer at the suspend stage"
    before = world.statuses()

    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    assert world.cli("collections", "apply", "--apply", "--by", "ana") == 0
    after = world.statuses()
    ours = {s["id"] for s in world.subs_of(never) if before[s["id"]] == "active"}
    assert ours
    assert {sub for sub in after if after[sub] != before[sub]} == ours
    assert all(after[sub] == "suspended" for sub in ours)
    events = [e for e in world.audit(never) if e["event"] == "suspend"]
    assert {e["subscription_id"] for e in events} == ours
    assert all(e["actor"] == "ana" and e["details"]["result"] == "succeeded" for e in events)
    assert all(e["details"]["status_before"] == "active" for e in events)
    assert all(e["details"]["ms_request_id"] for e in events)
    for customer in unapproved:  # not approved: not touched, not even read
        assert all(after[s["id"]] == before[s["id"]] for s in world.subs_of(customer))

    patches = world.patches()
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == patches  # nothing left to do

    world.pay_everything(never)
    capsys.readouterr()
    assert world.cli("collections", "apply", "--as-of", AS_OF) == 0
    assert "reactivate" in capsys.readouterr().out
    assert world.statuses() == after  # the dry run did not reactivate
    assert world.cli("collections", "apply", "--apply") == 0
    final = world.statuses()
    assert all(final[sub] == "active" for sub in ours)
    assert final[theirs["id"]] == "suspended"  # not pcsync's to reactivate
    assert final == {**before, theirs["id"]: "suspended"}
    events = world.audit(never)
    assert any(e["event"] == "approval_lapsed" for e in events)
    assert {e["subscription_id"] for e in events if e["event"] == "reactivate"} == ours
    plan = world._json("collections", "plan", "--as-of", AS_OF, "--json")
    assert all(f["action"] != "reactivate" for f in plan["flags"] if f["customer_id"] == never)


@pytest.mark.parametrize(
    "limit", ["max_suspend_customers = 1", "max_suspend_share = 0.1"], ids=["count", "share"]
)
def test_a_safety_limit_refuses_the_whole_apply(world: World, limit: str, capsys) -> None:  # type: ignore[no-untyped-def]
    world.configure(f"[collections]\n{limit}")
    both = world.suspend_customers()
    assert len(both) == 2  # 2 of 12 customers: over one customer and over a tenth
    assert world.cli("collections", "approve", *both, "--as-of", AS_OF) == 0
    before = world.statuses()
    capsys.readouterr()
    assert world.cli("collections", "apply", "--apply") == 1
    err = capsys.readouterr().err
    assert limit.split(" = ")[0] in err
    assert "nothing was changed" in err
    assert world.patches() == 0
    assert world.statuses() == before
    assert [e["event"] for e in world.audit()].count("apply_refused") == 1
    assert world.cli("collections", "apply", "--as-of", AS_OF) == 1  # the dry run says so too


def test_an_interrupted_attempt_is_settled_from_microsofts_answer(world: World) -> None:
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    # A run killed after Microsoft suspended the subscription but before it heard back.
    sub = world.subs_of(never)[0]
    sub["status"] = "suspended"
    _pending_suspension(world, sub["id"])
    assert world.cli("collections", "apply", "--apply") == 0
    with world.engine.connect() as c:
        results = dict(
            c.execute(
                sa.select(Action.subscription_id, Action.result).where(
                    Action.subscription_id == sub["id"]
                )
            ).all()
        )
    assert results == {sub["id"]: "succeeded"}  # pcsync's own suspension: it will reactivate it
    world.pay_everything(never)
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.statuses()[sub["id"]] == "active"


def test_exempt_customers_are_never_flagged_and_cannot_be_approved(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    world.configure(f'[collections]\nexempt_customers = ["{world.never}"]')
    plan = world._json("collections", "plan", "--as-of", AS_OF, "--json")
    (flag,) = [f for f in plan["flags"] if f["customer_id"] == world.never]
    assert (flag["action"], flag["reasons"][0]) == ("none", "exempt")
    capsys.readouterr()
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 2
    assert "nothing to approve" in capsys.readouterr().err
    with world.engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(Approval.__table__)) == 0


def test_an_unknown_exempt_id_is_a_config_error(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    world.configure('[collections]\nexempt_customers = ["not-a-customer"]')
    assert world.cli("collections", "plan", "--as-of", AS_OF) == 2
    assert "not-a-customer" in capsys.readouterr().err


def test_a_customer_policy_override(world: World) -> None:
    world.configure(
        f'[collections.overrides."{world.never}"]\npolicy = "patient"\n'
        "[[collections.policies.patient.stages]]\n"
        'name = "late"\ndays_overdue = 365\naction = "suspend"\n'
    )
    plan = world._json("collections", "plan", "--as-of", AS_OF, "--json")
    (flag,) = [f for f in plan["flags"] if f["customer_id"] == world.never]
    assert (flag["action"], flag["stage"]) == ("none", None)


def test_an_approval_expires(world: World) -> None:
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    with world.sessions.begin() as session:
        session.execute(
            sa.update(Approval).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == 0
    lapsed = [e for e in world.audit(world.never) if e["event"] == "approval_lapsed"]
    assert len(lapsed) == 1
    assert "expired" in lapsed[0]["details"]["reason"]


def test_flags_keep_their_history(world: World) -> None:
    (tailspin,) = [c for c in world.suspend_customers() if c != world.never]
    # Each collections round (the daemon's, or `collections notify`) keeps the history.
    assert world.cli("collections", "notify", "--as-of", "2026-10-01") == 0
    assert world.cli("collections", "notify", "--as-of", "2026-10-02") == 0  # same stage: same row
    assert world.cli("collections", "notify", "--as-of", AS_OF) == 0
    with world.engine.connect() as c:
        rows = c.execute(
            sa.select(CollectionFlag.stage, CollectionFlag.as_of, CollectionFlag.left_at)
            .where(CollectionFlag.customer_id == tailspin)
            .order_by(CollectionFlag.id)
        ).all()
    assert [row.stage for row in rows] == ["final_notice", "suspend"]  # one row per stay
    assert rows[-1].stage == "suspend"
    assert rows[-1].left_at is None
    assert all(row.left_at is not None for row in rows[:-1])
    assert str(rows[0].as_of) == "2026-10-02"  # the stay was refreshed, not duplicated

    stays = world._json("collections", "history", "--customer", tailspin, "--json")["stays"]
    assert [(s["stage"], s["left_at"] is None) for s in stays] == [
        ("final_notice", False),
        ("suspend", True),
    ]


def test_one_apply_at_a_time(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    from sync.runtime.lock import run_lock

    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    capsys.readouterr()
    with run_lock(world.engine, kind="collections_apply"):
        assert world.cli("collections", "apply", "--apply") == 1
        assert world.cli("sync", "--only", "customers") == 0  # a sync may run meanwhile
    assert "another collections apply is running" in capsys.readouterr().err
    assert world.patches() == 0


def test_a_running_sync_keeps_apply_out_and_each_names_the_other(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    """Apply refreshes subscriptions, so a running sync keeps it out, dry run too; and a
    sync refused because an apply holds the lock is told it is an apply, by pid."""
    import os

    from sync.runtime.lock import run_lock

    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    capsys.readouterr()
    requests = len(world.sim.requests)
    with run_lock(world.engine, kind="sync"):  # a sync is storing subscriptions
        assert world.cli("collections", "apply") == 1
        assert world.cli("collections", "apply", "--apply") == 1
    assert capsys.readouterr().err.count("another sync is running") == 2
    assert len(world.sim.requests) == requests  # not even a refresh was read
    assert world.patches() == 0
    with run_lock(world.engine, kind="sync", holder="collections apply"):
        assert world.cli("sync", "--only", "subscriptions") == 1
    assert f"another collections apply is running (pid {os.getpid()}, started " in (
        capsys.readouterr().err
    )


def test_a_sync_that_read_subscriptions_before_a_suspension_never_stores_them_after(
    world: World, tmp_path: Path
) -> None:
    """The race the lock closes: a sync reads a customer's subscriptions (active), an apply
    suspends them, then the sync stores what it read — recording "active" over pcsync's own
    suspension, which ends pcsync's ownership (it would never reactivate them). Here the
    sync is paused just after that read; the apply (--wait) must wait for it to finish."""
    import logging
    import os
    import subprocess
    import sys
    import threading

    from sync.collections.plan import suspended_by_pcsync
    from sync.db.models import Customer
    from tests.test_concurrency import _wait_for

    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    with world.engine.connect() as c:
        order = list(c.scalars(sa.select(Customer.id).order_by(Customer.id)))
    pause = tmp_path / "pause"
    pause.mkdir()
    env = {
        **os.environ,
        "PCSYNC_CLIENT_SECRET": world.sim.config.client_secret,
        "PCSYNC_FAILPOINT": f"subscriptions.read:{order.index(never) + 1}=pause:{pause}",
    }
    command = [sys.executable, "-m", "sync.cli", "--config", str(world.settings.source)]
    sync = subprocess.Popen(
        [*command, "sync", "--only", "subscriptions"], env=env, stderr=subprocess.PIPE, text=True
    )
    waiting = threading.Event()

    class Waiting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("waiting: another sync is running"):
                waiting.set()

    logger = logging.getLogger("sync.runtime.lock")
    handler, level = Waiting(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    exits: list[int] = []
    try:
        _wait_for(pause / "paused", sync)  # it has read the customer's active subscriptions
        apply = threading.Thread(
            target=lambda: exits.append(world.cli("collections", "apply", "--apply", "--wait"))
        )
        apply.start()
        assert waiting.wait(120), "the apply never waited for the sync"
        assert world.patches() == 0
        (pause / "resume").touch()
        _, err = sync.communicate(timeout=120)
        assert sync.returncode == 0, err
        apply.join(120)
    finally:
        (pause / "resume").touch()
        logger.removeHandler(handler)
        logger.setLevel(level)
        if sync.poll() is None:
            sync.kill()
        sync.communicate()
    assert exits == [0]
    suspended = {s["id"] for s in world.subs_of(never) if s["status"] == "suspended"}
    assert suspended == {s["id"] for s in world.subs_of(never)}
    with world.sessions() as session:
        assert set(suspended_by_pcsync(session)[never]) == suspended  # still pcsync's to undo
    assert world.cli("sync", "--only", "subscriptions") == 0  # a later sync keeps it so
    with world.sessions() as session:
        assert set(suspended_by_pcsync(session)[never]) == suspended


def test_an_interrupted_attempt_that_cannot_be_read_leaves_its_subscription_alone(
    world: World, capsys
) -> None:  # type: ignore[no-untyped-def]
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    unreadable = world.subs_of(never)[0]
    assert unreadable["status"] == "active"
    _pending_suspension(world, unreadable["id"])
    # Partner Center answers 404 for it, for now; the customer's listing still lists it.
    world.sim.config.unreadable_subscriptions.add(unreadable["id"])
    capsys.readouterr()
    assert world.cli("collections", "apply", "--apply") == 1
    out = capsys.readouterr().out
    assert f"suspend {unreadable['id']} (" in out
    assert "skipped" in out
    with world.engine.connect() as c:
        rows = c.execute(
            sa.select(Action.result).where(Action.subscription_id == unreadable["id"])
        ).all()
    assert [r.result for r in rows] == ["pending"]  # still to be settled, never retried blind
    others = [s for s in world.subs_of(never) if s["id"] != unreadable["id"]]
    assert others
    assert all(s["status"] == "suspended" for s in others)  # the others were done
    assert unreadable["status"] == "active"  # left alone


def test_apply_acts_on_what_partner_center_has_now(world: World, capsys) -> None:  # type: ignore[no-untyped-def]
    """A subscription bought since the last sync is suspended too; the dry run shows it."""
    import copy

    never = world.never
    _no_azure_refusal(world, never)
    bought = copy.deepcopy(world.subs_of(never)[0])
    bought.update(id="0badc0de-0000-4000-8000-000000000001", status="active")
    world.subs_of(never).append(bought)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    capsys.readouterr()
    assert world.cli("collections", "apply", "--as-of", AS_OF) == 0
    assert f"[{bought['id']}], now active" in capsys.readouterr().out
    assert world.patches() == 0
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.statuses()[bought["id"]] == "suspended"
    assert all(s["status"] == "suspended" for s in world.subs_of(never))


def test_the_report_lists_what_pcsync_changed_at_microsoft(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv

    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF, "--by", "ana") == 0
    today = datetime.now(UTC).date().isoformat()  # the report counts changes made by then
    assert world.cli("collections", "apply", "--as-of", today, "--apply", "--by", "ana") == 0
    out = tmp_path / "reports"
    assert world.cli("report", "--as-of", today, "--format", "csv", "--out", str(out)) == 0
    with (out / f"pcsync-{today}-suspensions.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert {r["Subscription ID"] for r in rows} == {s["id"] for s in world.subs_of(never)}
    assert {(r["Action"], r["Result"], r["By"], r["Status after"]) for r in rows} == {
        ("suspend", "succeeded", "ana", "suspended")
    }


def test_a_subscription_that_expired_while_suspended_is_not_reactivated(world: World) -> None:
    never = world.never
    _no_azure_refusal(world, never)
    assert world.cli("collections", "approve", never, "--as-of", AS_OF) == 0
    assert world.cli("collections", "apply", "--apply") == 0
    ended = world.subs_of(never)[0]
    ended["status"] = "expired"  # its term ended while it was suspended
    assert world.cli("sync", "--only", "subscriptions") == 0
    world.pay_everything(never)
    patches = world.patches()
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.statuses()[ended["id"]] == "expired"
    others = [s for s in world.subs_of(never) if s is not ended]
    assert all(s["status"] == "active" for s in others)
    # Each one reactivated; a licence whose auto-renew was on before has it turned back on.
    sent = len(others) + sum(1 for s in others if s["autoRenewEnabled"])
    assert world.patches() == patches + sent
    assert world.cli("collections", "apply", "--apply") == 0  # nothing left
    assert world.patches() == patches + sent


def test_a_revoked_approval_suspends_nothing(world: World) -> None:
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    assert world.cli("collections", "revoke", world.never, "--by", "ana", "--note", "paid") == 0
    assert world.cli("collections", "apply", "--apply") == 0
    assert world.patches() == 0
    (revoked,) = [e for e in world.audit(world.never) if e["event"] == "approval_revoked"]
    assert (revoked["actor"], revoked["details"]["reason"]) == ("ana", "paid")


def _snapshot(world: World) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order (both databases)."""
    with world.engine.connect() as c:
        meta = sa.MetaData()
        meta.reflect(c)
        return {
            name: sorted((tuple(r) for r in c.execute(sa.select(table))), key=repr)
            for name, table in sorted(meta.tables.items())
        }


def _database_bytes(world: World) -> bytes:
    """The SQLite file as on disk (no connection open); nothing on PostgreSQL."""
    world.engine.dispose()
    url = world.engine.url
    return Path(url.database).read_bytes() if url.get_backend_name() == "sqlite" else b""


def test_collections_plan_changes_nothing_even_with_lapsed_approvals(world: World) -> None:
    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    with world.sessions.begin() as session:  # the approval has lapsed, not recorded yet
        session.execute(
            sa.update(Approval).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    entries = len(world.audit())
    file_before, rows_before = _database_bytes(world), _snapshot(world)
    for args in ([], ["--json"], ["--as-of", "2026-10-01"], ["--as-of", "2027-06-01"]):
        assert world.cli("-v", "collections", "plan", *args) == 0
    assert _database_bytes(world) == file_before  # byte for byte, on SQLite
    assert _snapshot(world) == rows_before  # every row of every table, on both
    assert len(world.audit()) == entries
    with world.engine.connect() as c:
        assert c.scalar(sa.select(Approval.revoked_at)) is None

    # The lapse is recorded (revoked with its reason, audited) by the step that acts.
    assert world.cli("collections", "apply", "--apply") == 0
    with world.engine.connect() as c:
        assert c.scalar(sa.select(Approval.revoked_reason)) == (
            f"lapsed: {world.audit(world.never)[-1]['details']['reason']}"
        )
    assert world.audit(world.never)[-1]["event"] == "approval_lapsed"
    assert world.patches() == 0


def test_the_collections_round_records_lapsed_approvals(world: World) -> None:
    from sync.collections.job import run_collections_round
    from sync.db.models import Run

    assert world.cli("collections", "approve", world.never, "--as-of", AS_OF) == 0
    world.pay_everything(world.never)  # paid since the approval: it no longer holds
    result = run_collections_round(
        world.settings,
        world.sessions,
        date.fromisoformat(AS_OF),
        "daemon",
        "schedule",
        recipient_for=lambda customer: None,
    )
    (lapsed,) = [e for e in world.audit(world.never) if e["event"] == "approval_lapsed"]
    assert lapsed["actor"] == "daemon"
    assert lapsed["details"]["reason"] == "no longer at a suspend stage in USD (now nothing owed)"
    with world.engine.connect() as c:
        assert (
            c.scalar(sa.select(Approval.revoked_reason)) == f"lapsed: {lapsed['details']['reason']}"
        )
        counts = c.scalar(sa.select(Run.counts).where(Run.id == result.run_id))
    assert counts["approvals"] == {"lapsed": 1}
    assert world.patches() == 0
