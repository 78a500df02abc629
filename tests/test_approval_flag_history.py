"""`collections approve` and the flag history: a refused approval writes nothing, and an
approval on a past plan date does not rewrite the stays that notices hang off."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from sync.db.models import CollectionFlag
from tests.test_notices import Mailbox, smtp_server  # noqa: F401 - the fixture
from tests.world import AS_OF, World


def _flags(world: World) -> list[tuple]:  # type: ignore[type-arg]
    with world.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.select(CollectionFlag.__table__)).all()]


def _stages(world: World, as_of: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    plan = world._json("collections", "plan", "--as-of", as_of, "--json")
    return {(f["customer_id"], f["currency"]): (f["action"], f["stage"]) for f in plan["flags"]}


def _earlier_plan_date(world: World) -> str:
    """A date before AS_OF whose plan differs from AS_OF's, with the customer who never
    pays at a suspend stage (so it can be approved on that date)."""
    now = _stages(world, AS_OF)
    for back in range(1, 40):
        day = (date.fromisoformat(AS_OF) - timedelta(days=back)).isoformat()
        then = _stages(world, day)
        at_suspend = any(c == world.never and a == "suspend" for (c, _), (a, _) in then.items())
        if at_suspend and then != now:
            return day
    raise AssertionError("no earlier plan date with a suspend stage")


def test_approving_a_known_and_an_unknown_customer_leaves_the_flag_history_unchanged(
    world: World,
) -> None:
    before = _flags(world)
    code = world.cli("collections", "approve", world.never, "no-such-customer.example")
    assert code != 0
    assert _flags(world) == before


def test_approving_on_a_past_plan_date_does_not_send_stage_notices_again(
    world: World,
    smtp_server: Mailbox,  # noqa: F811
) -> None:
    past = _earlier_plan_date(world)
    assert world.cli("collections", "notify", "--as-of", AS_OF) == 0
    sent = len(smtp_server.messages)
    assert sent > 0
    assert world.cli("collections", "approve", world.never, "--as-of", past, "--by", "ana") == 0
    # Nobody's stage changed since the notices went out: nothing is sent again.
    assert world.cli("collections", "notify", "--as-of", AS_OF) == 0
    again = [m["Subject"] for _, m in smtp_server.messages[sent:]]
    assert again == []
