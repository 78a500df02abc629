"""Owed to Microsoft per invoice and per customer, beside what customers paid."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.exposure import CustomerExposure, customer_exposure, microsoft_invoices
from reconciliation.ledger import BilledLine, BillingTerms, Payment, build_charges, build_ledgers

D = Decimal
AS_OF = date(2026, 11, 25)
TERMS = BillingTerms()
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


def test_a_line_in_another_currency_is_not_added_to_the_invoices_lines() -> None:
    """Microsoft bills an invoice in one currency: 60 USD and 40 EUR are not 100 USD."""
    lines = [
        BilledLine("G1", date(2026, 9, 5), "a", "USD", D("60.00"), D("60.00")),
        BilledLine("G1", date(2026, 9, 5), "b", "EUR", D("40.00"), D("40.00")),
    ]
    header = ("G1", date(2026, 9, 5), "USD", D("100.00"), D("0"))
    (g1,) = microsoft_invoices([header], lines, 60, AS_OF)
    assert g1.lines_total == D("60.00")


def test_a_line_in_another_currency_leaves_the_invoice_short_of_its_total() -> None:
    from reconciliation.checks import InvoiceFact
    from reconciliation.result import Inputs, reconcile

    invoice = InvoiceFact(
        "G1", date(2026, 10, 8), "USD", D("100.00"), date(2026, 9, 1), date(2026, 9, 30)
    )
    lines = [
        BilledLine("G1", date(2026, 10, 8), "a", "USD", D("60.00"), D("60.00")),
        BilledLine("G1", date(2026, 10, 8), "b", "EUR", D("40.00"), D("40.00")),
    ]
    customers = {"a": "A", "b": "B"}
    inputs = Inputs(AS_OF, [(invoice, D(0))], lines, [], [], customers, [], TERMS)
    document = reconcile(inputs).document
    (listed,) = document["invoices"]
    assert listed["lines_total"] == "60.00"
    (finding,) = [f for f in document["findings"] if f["kind"] == "invoice_total_mismatch"]
    assert finding["invoice_id"] == "G1"


def _exposure(payments: list[Payment], terms: BillingTerms = TERMS) -> dict[str, CustomerExposure]:
    invoices = microsoft_invoices(
        [
            ("G1", date(2026, 9, 5), "USD", D("162.00"), D("162.00")),
            ("G2", date(2026, 10, 5), "USD", D("108.00"), D("54.00")),
        ],
        LINES,
        60,
        AS_OF,
    )
    ledgers = build_ledgers(build_charges(LINES, terms), payments, AS_OF)
    return {e.customer_id: e for e in customer_exposure(invoices, LINES, ledgers)}


def _paid(amount: str) -> list[Payment]:
    return [Payment("P1", "a", date(2026, 11, 1), D(amount), "USD")]


def test_customer_exposure_shares_what_was_paid_to_microsoft() -> None:
    """G1 is paid in full, G2 half: a's share paid = 108 + 54 = 162, owed 54."""
    a = _exposure(_paid("100"))["a"]
    assert (a.microsoft_charges, a.paid_to_microsoft, a.owed_to_microsoft, a.customer_paid) == (
        D("216.00"),
        D("162.00"),
        D("54.00"),
        D("100"),
    )


def test_exposure_is_the_pre_tax_cost_of_the_charges_not_paid() -> None:
    """
    charges (no markup)      a: G1 100.00 (Microsoft tax 8.00), G2 100.00 (tax 8.00)
                             b: G1  50.00 (tax 4.00)
    payments                 a: 100.00 → pays G1, oldest first
    exposure                 a: G2's cost 100.00, Microsoft's tax 8.00 beside it
                             b: nothing paid → 50.00, tax 4.00
    """
    rows = _exposure(_paid("100"))
    assert (rows["a"].exposure, rows["a"].unpaid_tax) == (D("100.00"), D("8.00"))
    assert (rows["b"].exposure, rows["b"].unpaid_tax) == (D("50"), D("4.00"))
    assert rows["b"].customer_paid == D(0)


def test_a_customer_who_paid_every_charge_has_exposure_zero() -> None:
    """a is charged 200.00 (Microsoft billed 216.00 with tax) and paid 200.00: exposure 0."""
    a = _exposure(_paid("200.00"))["a"]
    assert (a.exposure, a.unpaid_tax) == (D(0), D(0))


def test_a_customer_in_credit_has_exposure_zero() -> None:
    a = _exposure(_paid("250.00"))["a"]
    assert a.exposure == D(0)


def test_a_partly_paid_charge_counts_its_unpaid_share_of_the_cost() -> None:
    """
    markup 10 %              a: G1 cost 100 → 110.00, G2 cost 100 → 110.00
    payments                 a: 165.00 → G1 paid, G2 55.00 of 110.00 paid (half)
    exposure                 a: half of G2's cost = 50.00, half its Microsoft tax = 4.00
    """
    a = _exposure(_paid("165.00"), BillingTerms(markup_percent=D(10)))["a"]
    assert (a.exposure, a.unpaid_tax) == (D("50.00"), D("4.00"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.decimals(min_value=1, max_value=5000, places=2), min_size=1, max_size=6),
    st.lists(st.decimals(min_value=1, max_value=5000, places=2), max_size=6),
    st.decimals(min_value=0, max_value=50, places=1),
)
def test_exposure_is_between_zero_and_the_cost_and_zero_once_all_is_paid(
    costs: list[Decimal], payments: list[Decimal], markup: Decimal
) -> None:
    lines = [
        BilledLine(f"G{n}", date(2026, 1, 5) + timedelta(days=30 * n), "a", "USD", c, c)
        for n, c in enumerate(costs)
    ]
    paid = [Payment(f"P{n}", "a", date(2026, 9, 1), p, "USD") for n, p in enumerate(payments)]
    ledgers = build_ledgers(build_charges(lines, BillingTerms(markup_percent=markup)), paid, AS_OF)
    (exposure,) = customer_exposure([], lines, ledgers)
    assert D(0) <= exposure.exposure <= sum(costs)
    (ledger,) = ledgers
    if ledger.balance <= 0:
        assert exposure.exposure == 0
