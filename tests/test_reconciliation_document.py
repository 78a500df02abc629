"""The typed reader of the reconciliation document: what it writes, it reads back as it was."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation.document import (
    AGING_BUCKETS,
    CustomerRow,
    FindingRow,
    InvoiceRow,
    PaymentRow,
    Reconciled,
)
from reconciliation.money import round_money

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
TEXT = st.text(min_size=1, max_size=12)
DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
NUMBERS = st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False)


@st.composite
def amounts(draw: st.DrawFn, currency: str) -> Decimal:
    return round_money(draw(NUMBERS), currency)


@st.composite
def customers(draw: st.DrawFn) -> CustomerRow:
    c = draw(CURRENCIES)
    later = st.none() | amounts(c)
    return CustomerRow(
        customer_id=draw(TEXT),
        customer_name=draw(TEXT),
        currency=c,
        **{key: draw(amounts(c)) for key in CustomerRow._AMOUNTS},
        **{key: draw(later) for key in CustomerRow._LATER},
        days_overdue=draw(st.integers(0, 999)),
        aging={bucket: draw(amounts(c)) for bucket in AGING_BUCKETS},
    )


@st.composite
def invoices(draw: st.DrawFn) -> InvoiceRow:
    c = draw(CURRENCIES)
    return InvoiceRow(
        invoice_id=draw(TEXT),
        amends=draw(st.none() | TEXT),
        invoice_date=draw(DAYS),
        currency=c,
        **{key: draw(amounts(c)) for key in InvoiceRow._AMOUNTS},
        due_date=draw(DAYS),
        days_to_due=draw(st.integers(-999, 999)),
    )


@st.composite
def findings(draw: st.DrawFn) -> FindingRow:
    c = draw(st.none() | CURRENCIES)
    return FindingRow(
        kind=draw(TEXT),
        customer_id=draw(st.none() | TEXT),
        subscription_id=draw(st.none() | TEXT),
        invoice_id=draw(st.none() | TEXT),
        amount=draw(st.none() | amounts(c or "USD")),
        currency=c,
        detail=draw(TEXT),
    )


@st.composite
def payments(draw: st.DrawFn) -> PaymentRow:
    c = draw(CURRENCIES)
    return PaymentRow(
        reference=draw(TEXT),
        customer_id=draw(TEXT),
        customer_name=draw(TEXT),
        payment_date=draw(DAYS),
        currency=c,
        amount=draw(amounts(c)),
        applied=draw(amounts(c)),
        unapplied=draw(amounts(c)),
        applied_to=tuple(draw(st.lists(TEXT, max_size=3))),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.builds(
        Reconciled,
        as_of=DAYS,
        customers=st.lists(customers(), max_size=3).map(tuple),
        invoices=st.lists(invoices(), max_size=3).map(tuple),
        findings=st.lists(findings(), max_size=3).map(tuple),
        payments=st.lists(payments(), max_size=3).map(tuple),
    )
)
def test_a_written_document_reads_back_as_the_same_typed_rows(reconciled: Reconciled) -> None:
    text = json.dumps(reconciled.to_document(), sort_keys=True)
    read = Reconciled.from_document(json.loads(text))
    assert read == reconciled
    # equal Decimals may differ in how they are written (1.0 and 1.00): the text must not
    assert json.dumps(read.to_document(), sort_keys=True) == text


def test_a_document_stored_before_later_fields_reads_them_as_none() -> None:
    row = {
        "customer_id": "c1",
        "customer_name": "Contoso",
        "currency": "JPY",
        **{key: "1000" for key in CustomerRow._AMOUNTS},
        "days_overdue": 3,
        "aging": {bucket: "0" for bucket in AGING_BUCKETS},
    }
    old = {"as_of": "2026-11-25", "customers": [row], "invoices": [], "findings": []}
    (customer,) = Reconciled.from_document(old).customers
    assert (customer.charged_net, customer.charged_tax, customer.exposure_microsoft_tax) == (
        None,
        None,
        None,
    )
    assert customer.balance == Decimal(1000)
    assert Reconciled.from_document(old).payments == ()


def test_the_simulator_worlds_reconciliation_reads_back_from_its_stored_document(world) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from sync.db.models import ReconciliationRun
    from sync.reconcile import run_reconciliation
    from sync.reconcile.run import to_json

    as_of = world.sim.data.anchor
    result = run_reconciliation(world.settings, world.sessions, as_of)
    assert result.reconciled.customers
    assert result.reconciled.invoices
    with world.sessions() as session:
        stored = session.scalars(
            sa.select(ReconciliationRun.document).order_by(ReconciliationRun.id.desc()).limit(1)
        ).one()
    read = Reconciled.from_document(stored)
    assert read == Reconciled.from_document(json.loads(to_json(result.document)))
    assert to_json(read.to_document()) == to_json(result.document)
    # equal as typed rows, in the same order (the result's rows are lists, the reader's tuples)
    assert [list(getattr(read, f)) for f in ("customers", "invoices", "findings", "payments")] == [
        list(getattr(result.reconciled, f))
        for f in ("customers", "invoices", "findings", "payments")
    ]
    world.engine.dispose()
