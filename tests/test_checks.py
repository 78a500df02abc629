"""Bill checks: each kind of finding from a small fixture, and silence on a clean bill."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from reconciliation.checks import InvoiceFact, LineFact, SubscriptionFact, check_bill

D = Decimal
SEP = InvoiceFact("G1", date(2026, 10, 5), "USD", D("120.00"), date(2026, 9, 1), date(2026, 9, 30))
OCT = InvoiceFact(
    "G2", date(2026, 11, 5), "USD", D("120.00"), date(2026, 10, 1), date(2026, 10, 31)
)


def line(
    invoice: str = "G2",
    sub: str = "s1",
    seats: str = "10",
    subtotal: str = "120.00",
    charge: str = "cycleCharge",
    customer: str = "c1",
    occurrence: int = 1,
    start: date = date(2026, 10, 1),
    digest: str = "h1",
    price: str = "12.00",
    meter: str | None = None,
) -> LineFact:
    return LineFact(
        invoice,
        customer,
        sub,
        "USD",
        D(subtotal),
        D(subtotal),
        D(seats),
        charge,
        start,
        date(2026, 10, 31),
        digest,
        occurrence,
        product_id="CFQ7TTC0LH18",
        sku_id="0001",
        quantity=D(seats),
        unit_price=D(price),
        meter_id=meter,
    )


def sub(
    id_: str = "s1",
    quantity: int = 10,
    status: str = "active",
    cycle: str = "monthly",
    billing: str = "license",
    suspended_since: date | None = None,
    new_commerce: bool = False,
    term_end: date | None = None,
    listed: bool = True,
) -> SubscriptionFact:
    return SubscriptionFact(
        id_,
        "c1",
        status,
        quantity,
        billing,
        cycle,
        date(2025, 1, 1),
        suspended_since,
        new_commerce=new_commerce,
        term_end=term_end,
        listed=listed,
    )


def kinds(findings) -> list[tuple[str, str | None, str | None]]:  # type: ignore[no-untyped-def]
    return [(f.kind, f.invoice_id, f.subscription_id) for f in findings]


def test_a_clean_bill_has_no_findings() -> None:
    lines = [line("G1", start=date(2026, 9, 1)), line("G2")]
    assert check_bill([SEP, OCT], lines, [sub()], ["c1"]) == []


def test_invoice_total_mismatch_beyond_the_minor_unit() -> None:
    off_by_rounding = InvoiceFact("G2", OCT.invoice_date, "USD", D("120.004"), None, None)
    assert check_bill([off_by_rounding], [line()], [sub()], ["c1"]) == []
    off = InvoiceFact("G2", OCT.invoice_date, "USD", D("125.00"), None, None)
    (finding,) = check_bill([off], [line()], [sub()], ["c1"])
    assert (finding.kind, finding.amount, finding.currency) == (
        "invoice_total_mismatch",
        D("5.00"),
        "USD",
    )


def test_seat_mismatch_on_the_latest_invoice_only() -> None:
    lines = [line("G1", seats="12", start=date(2026, 9, 1)), line("G2", seats="12")]
    findings = check_bill([SEP, OCT], lines, [sub(quantity=10)], ["c1"])
    assert kinds(findings) == [("seat_mismatch", "G2", "s1")]
    assert "billed for 12 seats, the subscription has 10" in findings[0].detail


def test_prorated_and_credit_lines_are_not_seat_mismatches() -> None:
    lines = [
        line(seats="10", subtotal="60.00", charge="new", start=date(2026, 10, 15)),
        line(seats="0", subtotal="-5.00", charge="customerCredit", digest="h2"),
    ]
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("55.00"), None, None)
    assert check_bill([invoice], lines, [sub()], ["c1"]) == []


def test_billed_while_suspended_for_the_whole_period() -> None:
    suspended = sub(status="suspended", suspended_since=date(2026, 8, 20))
    (finding,) = check_bill([OCT], [line()], [suspended], ["c1"])
    assert (finding.kind, finding.amount) == ("billed_for_suspended", D("120.00"))
    assert "suspended since 2026-08-20" in finding.detail
    later = sub(status="suspended", suspended_since=date(2026, 10, 20))
    assert check_bill([OCT], [line()], [later], ["c1"]) == []


def test_active_monthly_licence_missing_from_the_latest_invoice() -> None:
    subs = [
        sub("s1"),
        sub("s2", quantity=3),
        sub("s3", cycle="annual"),
        sub("s4", billing="usage", quantity=1),
    ]
    findings = check_bill([OCT], [line()], subs, ["c1"])
    assert kinds(findings) == [("active_not_billed", "G2", "s2")]


def test_an_active_licence_microsoft_no_longer_lists_is_not_active_not_billed() -> None:
    subs = [sub("s1"), sub("s2", quantity=3, listed=False), sub("s3", quantity=4)]
    assert kinds(check_bill([OCT], [line()], subs, ["c1"])) == [("active_not_billed", "G2", "s3")]


def test_duplicate_line_and_unknown_customer_and_subscription() -> None:
    lines = [
        line(),
        line(occurrence=2),
        line(sub="ghost", digest="h3", customer="c1"),
        line(sub="s9", customer="stranger", digest="h4"),
    ]
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("480.00"), None, None)
    findings = check_bill([invoice], lines, [sub()], ["c1"])
    assert kinds(findings) == [
        ("duplicate_line", "G2", "s1"),
        ("unknown_customer", "G2", "s9"),
        ("unknown_subscription", "G2", "ghost"),
    ]
    assert findings[0].amount == D("120.00")


def test_a_charge_billed_again_under_fresh_order_ids_is_one_possible_duplicate() -> None:
    """
    G2  s1  CFQ7TTC0LH18/0001  cycleCharge  2026-10-01–31  10 × 12.00  120.00  order A
    G2  s1  CFQ7TTC0LH18/0001  cycleCharge  2026-10-01–31  10 × 12.00  120.00  order B
    G2  s1  CFQ7TTC0LH18/0001  cycleCharge  2026-10-01–31  10 × 12.00  120.00  order C
    → one duplicate_line for the group, amount 240.00 (what the two repeats add)
    """
    # Different order/alternate ids make different lines (hashes); each is its first occurrence.
    lines = [line(digest="order-a"), line(digest="order-b"), line(digest="order-c")]
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("360.00"), None, None)
    (finding,) = check_bill([invoice], lines, [sub()], ["c1"])
    assert (finding.kind, finding.invoice_id, finding.subscription_id) == (
        "duplicate_line",
        "G2",
        "s1",
    )
    assert (finding.amount, finding.currency) == (D("240.00"), "USD")
    assert "possible duplicate: 3 lines" in finding.detail


def test_lines_that_do_not_say_what_they_bill_are_duplicates_only_when_identical() -> None:
    """Lines without a charge period, quantity or unit price (some legacy lines): only
    byte-identical repeats count, even when only the repeats are given."""
    bare = LineFact(
        "G2", "c1", "s1", "USD", D("5.00"), D("5.00"), None, "usage", None, None, "h9", 1
    )
    again = LineFact(
        "G2", "c1", "s1", "USD", D("5.00"), D("5.00"), None, "usage", None, None, "h9", 2
    )
    other = LineFact(
        "G2", "c1", "s1", "USD", D("5.00"), D("5.00"), None, "usage", None, None, "h8", 1
    )
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("15.00"), None, None)
    for given in ([bare, again, other], [again]):
        findings = check_bill([invoice], given, [sub()], ["c1"], invoice_sums={"G2": D("15.00")})
        (finding,) = findings
        assert (finding.kind, finding.amount) == ("duplicate_line", D("5.00"))
        assert "2 lines on G2 are identical" in finding.detail


def test_lines_alike_but_for_the_unit_price_are_not_duplicates() -> None:
    lines = [line(digest="a"), line(digest="b", price="11.50", subtotal="115.00")]
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("235.00"), None, None)
    assert check_bill([invoice], lines, [sub()], ["c1"]) == []


def test_lines_of_different_meters_or_periods_are_not_duplicates() -> None:
    lines = [
        line(digest="a", meter="m-1"),
        line(digest="b", meter="m-2"),
        line(digest="c", meter="m-1", start=date(2026, 10, 2)),
    ]
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("360.00"), None, None)
    assert check_bill([invoice], lines, [sub()], ["c1"]) == []


def test_the_same_charge_on_two_invoices_is_not_a_duplicate() -> None:
    lines = [line("G1", digest="a"), line("G2", digest="b")]
    findings = check_bill([SEP, OCT], lines, [sub()], ["c1"])
    assert [f for f in findings if f.kind == "duplicate_line"] == []


def test_billed_for_a_subscription_already_suspended_when_first_seen() -> None:
    """
    s1 suspended, first seen so (no suspension date); G2 is the latest USD invoice:
    G1  s1  cycleCharge  2026-09  120.00   older invoice: not counted
    G2  s1  cycleCharge  2026-10  120.00   → billed_for_suspended 120.00, date unknown
    G2  s1  credit       2026-10  -10.00   not a positive charge
    """
    lines = [
        line("G1", start=date(2026, 9, 1), digest="a"),
        line(digest="b"),
        line(charge="customerCredit", subtotal="-10.00", seats="0", digest="c"),
    ]
    invoice = InvoiceFact("G2", OCT.invoice_date, "USD", D("110.00"), None, None)
    suspended = sub(status="suspended", suspended_since=None)
    (finding,) = check_bill([SEP, invoice], lines, [suspended], ["c1"])
    assert (finding.kind, finding.invoice_id, finding.amount) == (
        "billed_for_suspended",
        "G2",
        D("120.00"),
    )
    assert "suspension date unknown" in finding.detail
    assert "new commerce" not in finding.detail


def test_a_suspended_new_commerce_subscription_is_billed_until_its_term_ends() -> None:
    suspended = sub(
        status="suspended",
        suspended_since=date(2026, 9, 15),
        new_commerce=True,
        term_end=date(2027, 3, 31),
    )
    (finding,) = check_bill([OCT], [line()], [suspended], ["c1"])
    assert finding.kind == "billed_for_suspended"
    assert "suspended since 2026-09-15" in finding.detail
    assert "Microsoft's normal billing" in finding.detail
    assert "term ends on 2027-03-31" in finding.detail


def test_billed_for_suspended_concerns_the_latest_invoice_only() -> None:
    suspended = sub(status="suspended", suspended_since=date(2026, 8, 20))
    older = line("G1", start=date(2026, 9, 1))
    findings = check_bill([SEP, OCT], [older], [suspended], ["c1"])
    assert "billed_for_suspended" not in {f.kind for f in findings}
