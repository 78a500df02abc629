"""Customer ledger and aging, written as small accounting fixtures."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.aging import age, bucket_of
from reconciliation.ledger import (
    BilledLine,
    BillingTerms,
    Payment,
    TermsOverride,
    build_charges,
    build_ledgers,
)

D = Decimal
OCT = date(2026, 10, 5)
NOV = date(2026, 11, 5)
TERMS = BillingTerms(markup_percent=D(0), payment_terms_days=30)


def line(
    invoice: str,
    day: date,
    amount: str,
    customer: str = "c1",
    currency: str = "USD",
    tax: str = "0",
) -> BilledLine:
    return BilledLine(invoice, day, customer, currency, D(amount), D(amount) + D(tax))


def pay(
    ref: str,
    day: date,
    amount: str,
    invoice: str | None = None,
    customer: str = "c1",
    currency: str = "USD",
) -> Payment:
    return Payment(ref, customer, day, D(amount), currency, invoice)


def ledger_of(lines, payments, as_of, terms=TERMS):  # type: ignore[no-untyped-def]
    (ledger,) = build_ledgers(build_charges(lines, terms), payments, as_of)
    return ledger


def test_charge_is_cost_plus_markup_rounded_half_up_per_group() -> None:
    """G1 has two lines for c1: 10.005 + 0.000 → cost 10.005, markup 10% → 11.0055 → 11.01."""
    charges = build_charges(
        [line("G1", OCT, "10.005"), line("G1", OCT, "0.000", tax="0.8")],
        BillingTerms(markup_percent=D(10), payment_terms_days=30),
    )
    (charge,) = charges
    assert charge.cost == D("10.005")
    assert charge.cost_with_tax == D("10.805")
    assert charge.amount == D("11.01")
    assert charge.due_date == OCT + timedelta(days=30)


def test_credit_lines_reduce_the_charge() -> None:
    (charge,) = build_charges([line("G1", OCT, "100.00"), line("G1", OCT, "-25.00")], TERMS)
    assert charge.amount == D("75.00")


def test_jpy_rounds_to_whole_yen() -> None:
    terms = BillingTerms(markup_percent=D("12.5"))
    (charge,) = build_charges([line("G1", OCT, "1001", currency="JPY")], terms)
    assert charge.amount == D("1126")  # 1126.125 → 1126


def test_customer_override_changes_markup_and_terms() -> None:
    terms = BillingTerms(
        markup_percent=D(10),
        payment_terms_days=30,
        overrides={"c2": TermsOverride(markup_percent=D(0), payment_terms_days=14)},
    )
    charges = {
        c.customer_id: c
        for c in build_charges([line("G1", OCT, "100", "c1"), line("G1", OCT, "100", "c2")], terms)
    }
    assert (charges["c1"].amount, charges["c1"].due_date) == (D("110.00"), date(2026, 11, 4))
    assert (charges["c2"].amount, charges["c2"].due_date) == (D("100"), date(2026, 10, 19))


def test_tax_is_added_after_the_markup_and_rounded_once() -> None:
    """
    cost 10.005, markup 10 %, tax 19 %
    net   10.005 × 1.10        = 11.0055   → shown 11.01
    gross 11.0055 × 1.19       = 13.096545 → 13.10 (the one rounding of what is owed)
    tax   13.10 − 11.01        = 2.09
    """
    terms = BillingTerms(markup_percent=D(10), tax_percent=D(19))
    (charge,) = build_charges([line("G1", OCT, "10.005")], terms)
    assert (charge.net, charge.tax, charge.amount) == (D("11.01"), D("2.09"), D("13.10"))


def test_tax_rounds_once_on_the_gross() -> None:
    """cost 0.125, tax 20 %: 0.15 exactly (rounding the net first would give 0.13 × 1.2 → 0.16)."""
    (charge,) = build_charges([line("G1", OCT, "0.125")], BillingTerms(tax_percent=D(20)))
    assert charge.amount == D("0.15")
    assert charge.net + charge.tax == charge.amount


def test_customer_override_of_the_tax_only_keeps_the_default_markup() -> None:
    terms = BillingTerms(
        markup_percent=D(10),
        tax_percent=D(20),
        overrides={"c2": TermsOverride(tax_percent=D(0))},
    )
    charges = {
        c.customer_id: c
        for c in build_charges([line("G1", OCT, "100", "c1"), line("G1", OCT, "100", "c2")], terms)
    }
    assert (charges["c1"].net, charges["c1"].tax, charges["c1"].amount) == (
        D("110.00"),
        D("22.00"),
        D("132.00"),
    )
    assert (charges["c2"].net, charges["c2"].tax, charges["c2"].amount) == (
        D("110.00"),
        D("0.00"),
        D("110.00"),
    )


def test_a_tax_inclusive_payment_settles_the_customer_to_zero() -> None:
    """
    charges (markup 15 %, tax 21 %)   G1 cost 86.96 → net 100.00, tax 21.00, gross 121.00
                                      G2 cost 43.48 → net  50.00, tax 10.50, gross  60.50
    payments                          P1 121.00 (G1, tax included), P2 60.50
    balance 0.00, no credit, nothing overdue
    """
    terms = BillingTerms(markup_percent=D(15), tax_percent=D(21))
    ledger = ledger_of(
        [line("G1", OCT, "86.96"), line("G2", NOV, "43.48")],
        [
            pay("P1", date(2026, 11, 1), "121.00", invoice="G1"),
            pay("P2", date(2026, 12, 1), "60.50"),
        ],
        date(2027, 1, 31),
        terms,
    )
    assert [c.amount for c in ledger.charges] == [D("121.00"), D("60.50")]
    assert (ledger.charged, ledger.charged_tax) == (D("181.50"), D("31.50"))
    assert (ledger.balance, ledger.unapplied, ledger.overdue_amount) == (D(0), D(0), D(0))


def test_payment_naming_an_invoice_goes_there_first() -> None:
    """Charges: G1 (Oct) 100, G2 (Nov) 50. Payment of 50 naming G2 pays G2, leaves G1 open."""
    ledger = ledger_of(
        [line("G1", OCT, "100"), line("G2", NOV, "50")],
        [pay("P1", date(2026, 11, 10), "50", invoice="G2")],
        date(2026, 11, 20),
    )
    assert ledger.open_amounts == {"G1": D(100), "G2": D(0)}
    assert ledger.overdue_amount == D(100)
    assert ledger.days_overdue == (date(2026, 11, 20) - date(2026, 11, 4)).days


def test_a_payment_names_its_invoice_in_any_case() -> None:
    """Microsoft's invoice ids are case-insensitive: a payment naming g2 (as the payer
    copied it, or as an earlier import stored it) pays G2, not the older G1."""
    ledger = ledger_of(
        [line("G1", OCT, "100"), line("G2", NOV, "50")],
        [pay("P1", date(2026, 11, 10), "50", invoice="g2")],
        date(2026, 11, 20),
    )
    assert ledger.open_amounts == {"G1": D(100), "G2": D(0)}
    assert [(a.invoice_id, a.amount) for a in ledger.applications] == [("G2", D(50))]


def test_unnamed_payment_pays_the_oldest_charge_first() -> None:
    """Payment of 120 with no invoice: G1 100 paid, G2 gets 20."""
    ledger = ledger_of(
        [line("G2", NOV, "50"), line("G1", OCT, "100")],
        [pay("P1", date(2026, 11, 10), "120")],
        date(2026, 11, 20),
    )
    assert ledger.open_amounts == {"G1": D(0), "G2": D(30)}
    assert ledger.overdue_amount == D(0)
    assert ledger.days_overdue == 0
    assert age(ledger)["current"] == D(30)


def test_overpayment_is_a_credit_used_by_later_charges() -> None:
    """P1 pays 150 on 2026-10-20 for G1 (100): 50 credit. G2 (50) on 2026-11-05 uses it."""
    before = ledger_of(
        [line("G1", OCT, "100")], [pay("P1", date(2026, 10, 20), "150")], date(2026, 11, 1)
    )
    assert before.unapplied == D(50)
    assert before.balance == D(-50)
    after = ledger_of(
        [line("G1", OCT, "100"), line("G2", NOV, "50")],
        [pay("P1", date(2026, 10, 20), "150")],
        date(2026, 11, 20),
    )
    assert after.unapplied == D(0)
    assert after.open_amounts == {"G1": D(0), "G2": D(0)}
    assert after.balance == D(0)


def test_payments_and_invoices_after_the_as_of_date_are_ignored() -> None:
    ledger = ledger_of(
        [line("G1", OCT, "100"), line("G2", NOV, "50")],
        [pay("P1", date(2026, 11, 2), "100"), pay("P2", date(2026, 11, 3), "40")],
        date(2026, 11, 2),
    )
    assert [c.invoice_id for c in ledger.charges] == ["G1"]
    assert ledger.paid == D(100)
    assert ledger.balance == D(0)


def test_two_currencies_for_one_customer_are_two_ledgers() -> None:
    ledgers = build_ledgers(
        build_charges([line("G1", OCT, "100"), line("G9", OCT, "80", currency="EUR")], TERMS),
        [pay("P1", date(2026, 10, 10), "80", currency="EUR")],
        date(2026, 12, 1),
    )
    by_currency = {ledger.currency: ledger for ledger in ledgers}
    assert by_currency["USD"].overdue_amount == D(100)
    assert by_currency["EUR"].balance == D(0)


def test_aging_buckets_by_days_past_due() -> None:
    """Due dates: G1 2026-07-05+30, … ; as of 2026-11-25."""
    days = {
        "G1": date(2026, 6, 1),
        "G2": date(2026, 8, 1),
        "G3": date(2026, 9, 1),
        "G4": date(2026, 10, 1),
        "G5": date(2026, 11, 1),
    }
    ledger = ledger_of([line(i, d, "10") for i, d in days.items()], [], date(2026, 11, 25))
    assert age(ledger) == {
        "current": D(10),
        "1-30": D(10),
        "31-60": D(10),
        "61-90": D(10),
        "over_90": D(10),
    }
    assert ledger.days_overdue == (date(2026, 11, 25) - date(2026, 7, 1)).days


def test_bucket_edges() -> None:
    assert [bucket_of(n) for n in (-3, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current",
        "current",
        "1-30",
        "1-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "over_90",
    ]


# --- properties ------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
days = st.integers(min_value=0, max_value=300)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[BilledLine], list[Payment], date]:
    start = date(2026, 1, 1)
    lines = [
        BilledLine(
            f"G{n}",
            start + timedelta(days=draw(days)),
            draw(st.sampled_from(["a", "b"])),
            draw(st.sampled_from(["USD", "JPY"])),
            draw(amounts),
            D(0),
        )
        for n in range(draw(st.integers(0, 8)))
    ]
    invoices = [bl.invoice_id for bl in lines] + [None]
    payments = [
        Payment(
            f"P{n}",
            draw(st.sampled_from(["a", "b"])),
            start + timedelta(days=draw(days)),
            draw(amounts),
            draw(st.sampled_from(["USD", "JPY"])),
            draw(st.sampled_from(invoices)),
        )
        for n in range(draw(st.integers(0, 8)))
    ]
    return lines, payments, start + timedelta(days=draw(days))


@settings(max_examples=200, deadline=None)
@given(books())
def test_applied_plus_unapplied_equals_payments(book) -> None:  # type: ignore[no-untyped-def]
    lines, payments, as_of = book
    for ledger in build_ledgers(build_charges(lines, TERMS), payments, as_of):
        assert sum(a.amount for a in ledger.applications) == ledger.paid


@settings(max_examples=200, deadline=None)
@given(books())
def test_aging_buckets_sum_to_the_balance(book) -> None:  # type: ignore[no-untyped-def]
    lines, payments, as_of = book
    for ledger in build_ledgers(build_charges(lines, TERMS), payments, as_of):
        assert sum(age(ledger).values()) - ledger.unapplied == ledger.balance


@settings(max_examples=100, deadline=None)
@given(books(), st.randoms())
def test_input_order_does_not_matter(book, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    lines, payments, as_of = book
    first = build_ledgers(build_charges(lines, TERMS), payments, as_of)
    rng.shuffle(lines)
    rng.shuffle(payments)
    second = build_ledgers(build_charges(lines, TERMS), payments, as_of)
    assert [(x.customer_id, x.currency, x.open_amounts, x.unapplied) for x in first] == [
        (y.customer_id, y.currency, y.open_amounts, y.unapplied) for y in second
    ]


def test_a_credit_note_settles_the_invoice_it_amends_before_older_charges() -> None:
    """c1: G1 (Oct) 100.00 and G2 (Nov) 50.00 open; credit note C2 (Nov 20) −50.00 amends G2.

    As of Dec 31 G2 is settled by the note, G1 stays overdue for all of its 100.00,
    and the balance is 100.00.
    """
    lines = [
        line("G1", OCT, "100.00"),
        line("G2", NOV, "50.00"),
        line("C2", date(2026, 11, 20), "-50.00"),
    ]
    (ledger,) = build_ledgers(build_charges(lines, TERMS, {"C2": "G2"}), [], date(2026, 12, 31))
    assert ledger.balance == D("100.00")
    assert ledger.open_amounts == {"G1": D("100.00"), "G2": D("0.00"), "C2": D("0")}
    assert ledger.overdue_amount == D("100.00")
    assert [c.invoice_id for c, _ in ledger.overdue_charges()] == ["G1"]


def test_what_a_credit_note_cannot_use_stays_on_it_and_payments_still_apply() -> None:
    """c1: G1 30.00; note C1 −50.00 amends G1 (20.00 of it unused); a payment of 10.00
    later is left as credit too: 30.00 of credit in all."""
    lines = [line("G1", OCT, "30.00"), line("C1", NOV, "-50.00")]
    (ledger,) = build_ledgers(
        build_charges(lines, TERMS, {"C1": "G1"}),
        [pay("P1", date(2026, 11, 30), "10.00")],
        date(2026, 12, 31),
    )
    assert ledger.open_amounts == {"G1": D("0.00"), "C1": D("-20.00")}
    assert ledger.overdue_amount == 0
    assert ledger.balance == D("-30.00")  # 30 − 50 − 10: the customer is in credit
    assert ledger.unapplied == D("30.00")
