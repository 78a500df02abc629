"""A subscription Microsoft no longer lists is delisted, not kept as it was, on both databases.

``GET /v1/customers/{id}/subscriptions`` returns all of a customer's subscriptions in
one unpaged collection: a stored one it leaves out (moved to another partner, purged)
is marked delisted, its last status kept; listed again, it is relisted. A listing that
was refused or not found delists nothing; an empty one delists all of the customer's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.partner_center import Subscription
from connectors.simulator.data import public
from sync.jobs import SyncIncompleteError, run_sync
from sync.runtime.runs import list_runs, recorded_run
from sync.store import upsert_subscriptions
from tests.test_sync import _mirror, _mirrored


def _delisted(engine: sa.Engine) -> dict[str, tuple[str, Any]]:
    """Every delisted subscription: its stored status and since when."""
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT id, status, delisted_at FROM subscriptions WHERE delisted_at IS NOT NULL"
            )
        ).all()
    return {sub_id: (status, since) for sub_id, status, since in rows}


def _counts(sessions: Any, run_id: int) -> dict[str, Any]:
    (view,) = [v for v in list_runs(sessions) if v.id == run_id]
    assert view.status == "succeeded"
    return dict(view.counts["subscriptions"])


def test_a_subscription_microsoft_no_longer_lists_is_delisted_and_the_run_succeeds(
    start_simulator, db_url, tmp_path
) -> None:
    """Moved to another partner: delisted with its last status, its siblings untouched."""
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    customer = sim.data.customers[1]["id"]
    gone = sim.data.subscriptions[customer].pop(0)  # Microsoft no longer lists it
    assert gone["status"] == "active"
    counts = _counts(sessions, run_sync(settings, engine, sessions, _mirror()))
    assert counts["delisted"] == 1
    assert "relisted" not in counts
    delisted = _delisted(engine)
    assert set(delisted) == {gone["id"]}
    assert delisted[gone["id"]][0] == "active"  # as Microsoft last gave it

    since = delisted[gone["id"]][1]
    counts = _counts(sessions, run_sync(settings, engine, sessions, _mirror()))
    assert "delisted" not in counts  # still left out: delisted since the first run without it
    assert _delisted(engine) == {gone["id"]: ("active", since)}
    engine.dispose()


def test_a_delisted_subscription_listed_again_is_relisted_and_refreshed(
    start_simulator, db_url, tmp_path
) -> None:
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    customer = sim.data.customers[1]["id"]
    back = sim.data.subscriptions[customer].pop(0)
    run_sync(settings, engine, sessions, _mirror())
    assert set(_delisted(engine)) == {back["id"]}
    back["quantity"] += 2  # listed again (a transfer back), with a change
    sim.data.subscriptions[customer].insert(0, back)
    counts = _counts(sessions, run_sync(settings, engine, sessions, _mirror()))
    assert counts["relisted"] == 1
    assert _delisted(engine) == {}
    with engine.connect() as c:
        quantity = c.scalar(
            sa.text("SELECT quantity FROM subscriptions WHERE id = :s"), {"s": back["id"]}
        )
    assert quantity == back["quantity"]
    engine.dispose()


def test_an_empty_subscription_listing_of_a_listed_customer_delists_all_of_its_subscriptions(
    start_simulator, db_url, tmp_path
) -> None:
    """Microsoft still lists the customer, with no subscription: all of them moved away.
    (A sign-in to another tenant is refused by the customer listing's guard first.)"""
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    customer = sim.data.customers[2]["id"]
    ids = {s["id"] for s in sim.data.subscriptions[customer]}
    assert ids
    sim.data.subscriptions[customer] = []
    counts = _counts(sessions, run_sync(settings, engine, sessions, _mirror()))
    assert counts["delisted"] == len(ids)
    assert set(_delisted(engine)) == ids
    engine.dispose()


@pytest.mark.parametrize("answer", ["refused", "not found"])
def test_a_subscription_listing_that_was_not_read_delists_nothing(
    start_simulator, db_url, tmp_path, answer: str
) -> None:
    sim = start_simulator()
    settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    customer = sim.data.customers[1]["id"]
    if answer == "refused":
        sim.data.subscriptions[customer].pop(0)
        sim.config.refused_customers[customer] = ""  # a bare 403 for this customer alone
    else:
        del sim.data.subscriptions[customer]  # 404 for a customer Microsoft lists
    with pytest.raises(SyncIncompleteError, match=customer):
        run_sync(settings, engine, sessions, _mirror())
    assert list_runs(sessions)[0].status == "partial"
    assert _delisted(engine) == {}
    engine.dispose()


def test_one_subscription_read_by_itself_delists_none_of_its_siblings(
    start_simulator, db_url, tmp_path
) -> None:
    """An apply stores the one subscription it changed: not a listing of the customer."""
    sim = start_simulator()
    _settings, engine, sessions = _mirrored(sim, db_url, tmp_path)
    customer = sim.data.customers[1]["id"]
    one = Subscription.from_api(public(sim.data.subscriptions[customer][0]), customer)
    assert len(sim.data.subscriptions[customer]) > 1
    with (
        recorded_run(sessions, "subscriptions_refresh", "manual", {}) as run,
        sessions.begin() as session,
    ):
        upsert_subscriptions(session, customer, [one], datetime.now(UTC), run)
    assert _delisted(engine) == {}
    engine.dispose()
