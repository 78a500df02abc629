"""Collections policy: stages by days and amount, exemptions, reactivation, never suspend unowed."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.ledger import BilledLine, BillingTerms, Payment, build_charges, build_ledgers
from reconciliation.policy import Policy, Stage, plan
from sync.cli import main
from tests.test_ledger import books

D = Decimal
STAGES = (
    Stage("reminder", 1, "follow_up"),
    Stage("final_notice", 30, "follow_up"),
    Stage("suspend", 60, "suspend", D("100")),
)
POLICY = Policy(STAGES, min_overdue_amount=D("5"))
TERMS = BillingTerms(payment_terms_days=30)


def ledgers(amount: str, invoice_day: date, as_of: date, paid: str = "0", customer: str = "c1"):  # type: ignore[no-untyped-def]
    lines = [BilledLine("G1", invoice_day, customer, "USD", D(amount), D(amount))]
    payments = [Payment("P1", customer, invoice_day, D(paid), "USD")] if D(paid) else []
    return build_ledgers(build_charges(lines, TERMS), payments, as_of)


def one(amount: str, days_overdue: int, **kw):  # type: ignore[no-untyped-def]
    # Invoice dated so that it is `days_overdue` days past its 30-day terms on 2026-11-25.
    as_of = date(2026, 11, 25)
    invoice_day = date.fromordinal(as_of.toordinal() - 30 - days_overdue)
    flags = plan(ledgers(amount, invoice_day, as_of), POLICY, {"c1": "Contoso"}, **kw)
    return flags[0] if flags else None


def test_stages_by_days_overdue() -> None:
    assert (one("500", 0).action, one("500", 0).stage) == ("none", None)  # owed, not yet due
    assert (one("500", 1).action, one("500", 1).stage) == ("follow_up", "reminder")
    assert (one("500", 30).action, one("500", 30).stage) == ("follow_up", "final_notice")
    flag = one("500", 60)
    assert (flag.action, flag.stage, flag.days_overdue) == ("suspend", "suspend", 60)
    assert any("Microsoft's bill" in reason for reason in flag.reasons)
    assert flag.reasons[0].startswith("G1: 500.00 USD of 500.00 unpaid, due ")


def test_a_stage_needs_its_minimum_amount() -> None:
    assert one("99", 90).stage == "final_notice"  # suspend needs 100 overdue
    assert one("4.99", 90).stage is None  # below the policy's minimum
    assert one("4.99", 90).action == "none"


def test_paid_customers_are_not_flagged() -> None:
    assert one("500", 90, suspended_by_pcsync=()) is not None
    as_of = date(2026, 11, 25)
    assert plan(ledgers("500", date(2026, 6, 1), as_of, paid="500"), POLICY, {}) == []


def test_exempt_customers_are_never_flagged_beyond_none() -> None:
    policy = Policy(STAGES, exempt_customers=frozenset({"c1"}))
    (flag,) = plan(ledgers("500", date(2026, 6, 1), date(2026, 11, 25)), policy, {})
    assert (flag.action, flag.stage, flag.reasons[0]) == ("none", None, "exempt")


def test_reactivate_once_no_longer_at_a_suspend_stage() -> None:
    as_of = date(2026, 11, 25)
    paid = ledgers("500", date(2026, 6, 1), as_of, paid="500")
    (flag,) = plan(paid, POLICY, {}, suspended_by_pcsync=["c1"])
    assert flag.action == "reactivate"
    still = ledgers("500", date(2026, 6, 1), as_of)
    (flag,) = plan(still, POLICY, {}, suspended_by_pcsync=["c1"])
    assert flag.action == "suspend"


@settings(max_examples=200, deadline=None)
@given(books(), st.integers(0, 5))
def test_nothing_overdue_is_never_suspended(book, zero_stage_days: int) -> None:  # type: ignore[no-untyped-def]
    """Even a policy that suspends from day 0 with no minimum spares customers with nothing
    overdue."""
    lines, payments, as_of = book
    policy = Policy((Stage("early", zero_stage_days, "suspend"),), min_overdue_amount=D(0))
    built = build_ledgers(build_charges(lines, TERMS), payments, as_of)
    by_key = {(ledger.customer_id, ledger.currency): ledger for ledger in built}
    for flag in plan(built, policy, {}):
        if by_key[(flag.customer_id, flag.currency)].overdue_amount == 0:
            assert flag.action != "suspend"


def test_plan_json_on_synced_data(world, db_url, tmp_path: Path, capsys) -> None:
    sim, settings_, engine = world.sim, world.settings, world.engine
    argv = [
        "--config",
        str(settings_.source),
        "collections",
        "plan",
        "--as-of",
        "2026-11-25",
        "--json",
    ]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["as_of"] == "2026-11-25"
    flags = {f["customer_id"]: f for f in document["flags"]}
    never = flags[sim.data.customers[4]["id"]]  # never pays
    assert (never["action"], never["stage"]) == ("suspend", "suspend")
    assert isinstance(never["overdue_amount"], str)
    assert all(
        f["action"] in ("none", "follow_up", "suspend", "reactivate") for f in flags.values()
    )
    assert all(f["action"] != "suspend" or f["days_overdue"] >= 60 for f in flags.values())
    engine.dispose()


def test_a_suspension_names_the_terms_ending_soon() -> None:
    from reconciliation.policy import Term

    terms = {
        "c1": [
            Term("s-soon", "Microsoft 365 E3", date(2026, 12, 10)),
            Term("s-later", "Exchange Online", date(2027, 6, 1)),
            Term("s-azure", "Azure plan", None),
        ]
    }
    as_of = date(2026, 11, 25)
    (flag,) = plan(ledgers("500", date(2026, 6, 1), as_of), POLICY, {}, terms=terms)
    assert flag.action == "suspend"
    ending = [r for r in flag.reasons if "term ends" in r]
    assert ending == [
        "Microsoft 365 E3 (s-soon): term ends 2026-12-10 (in 15 days); still suspended then, "
        "it expires instead of renewing"
    ]


def test_a_customer_can_follow_another_policy() -> None:
    patient = Policy((Stage("late", 365, "suspend"),))
    policy = Policy(STAGES, per_customer={"c1": patient})
    as_of = date(2026, 11, 25)
    (flag,) = plan(ledgers("500", date(2026, 6, 1), as_of), policy, {})
    assert (flag.action, flag.stage) == ("none", None)
    (other,) = plan(ledgers("500", date(2026, 6, 1), as_of, customer="c2"), policy, {})
    assert other.action == "suspend"
