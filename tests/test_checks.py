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
    )


def sub(
    id_: str = "s1",
    quantity: int = 10,
    status: str = "active",
    cycle: str = "monthly",
    billing: str = "license",
    suspended_since: date | None = None,
) -> SubscriptionFact:
    return SubscriptionFact(
        id_, "c1", status, quantity, billing, cycle, date(2025, 1, 1), suspended_since
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
