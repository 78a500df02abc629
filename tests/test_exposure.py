"""Owed to Microsoft per invoice and per customer, beside what customers paid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from reconciliation.exposure import customer_exposure, microsoft_invoices
from reconciliation.ledger import BilledLine

D = Decimal
LINES = [
    BilledLine("G1", date(2026, 9, 5), "a", "USD", D("100"), D("108.00")),
    BilledLine("G1", date(2026, 9, 5), "b", "USD", D("50"), D("54.00")),
    BilledLine("G2", date(2026, 10, 5), "a", "USD", D("100"), D("108.00")),
]


def test_invoices_have_due_dates_outstanding_and_line_sums() -> None:
    invoices = microsoft_invoices(
        [
            ("G1", date(2026, 9, 5), "USD", D("162.00"), D("162.00")),
            ("G2", date(2026, 10, 5), "USD", D("108.00"), D("0")),
            ("G3", date(2026, 12, 5), "USD", D("10.00"), D("0")),
        ],
        LINES,
        60,
        date(2026, 11, 25),
    )
    assert [i.id for i in invoices] == ["G1", "G2"]  # G3 is after the as-of date
    g1, g2 = invoices
    assert (g1.outstanding, g1.lines_total, g1.due_date) == (D(0), D("162.00"), date(2026, 11, 4))
    assert (g2.outstanding, g2.days_to_due(date(2026, 11, 25))) == (D("108.00"), 9)


def test_customer_exposure_shares_what_was_paid_to_microsoft() -> None:
    """G1 is paid in full, G2 half: a's share paid = 108 + 54 = 162, owed 54."""
    invoices = microsoft_invoices(
        [
            ("G1", date(2026, 9, 5), "USD", D("162.00"), D("162.00")),
            ("G2", date(2026, 10, 5), "USD", D("108.00"), D("54.00")),
        ],
        LINES,
        60,
        date(2026, 11, 25),
    )
    rows = {e.customer_id: e for e in customer_exposure(invoices, LINES, {("a", "USD"): D("100")})}
    a = rows["a"]
    assert (a.microsoft_charges, a.paid_to_microsoft, a.owed_to_microsoft) == (
        D("216.00"),
        D("162.00"),
        D("54.00"),
    )
    assert a.exposure == D("116.00")  # charged by Microsoft 216, customer paid 100
    assert rows["b"].customer_paid == D(0)
