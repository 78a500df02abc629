"""What ``pcsync reconcile`` reads: every input of the pure rules, as plain records.

Invoices, the per-invoice line sums the sync keeps, the lines that can raise a
finding (:mod:`sync.reconcile.candidates`), subscriptions with when each was
seen suspended, customers, the payments that count, and the billing terms.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconciliation.checks import InvoiceFact, SubscriptionFact, latest_by_currency
from reconciliation.errors import ConfigError
from reconciliation.ledger import (
    BilledLine,
    BillingTerms,
    Charge,
    Payment,
    TermsOverride,
    build_charges,
)
from reconciliation.money import ZERO
from reconciliation.result import Inputs
from sync.config import Settings
from sync.db import models
from sync.reconcile.candidates import billed_on_latest, finding_candidates
from sync.reconcile.rows import day, money, plain_rows

__all__ = ["billing_terms", "check_override_customers", "customer_charges", "load_inputs"]


def billing_terms(settings: Settings) -> BillingTerms:
    billing = settings.billing
    return BillingTerms(
        markup_percent=billing.markup_percent,
        tax_percent=billing.tax_percent,
        payment_terms_days=billing.payment_terms_days,
        overrides={
            customer.lower(): TermsOverride(o.markup_percent, o.payment_terms_days, o.tax_percent)
            for customer, o in billing.overrides.items()
        },
    )


def check_override_customers(session: Session, settings: Settings) -> None:
    """Refuse a ``[billing.overrides."<id>"]`` naming no known customer.

    A mistyped id would leave the customer it meant on the default markup, tax
    and payment terms: charged the wrong amount, overdue on the wrong day.
    """
    named = {customer.lower(): customer for customer in settings.billing.overrides}
    if not named:
        return
    known = set(session.scalars(select(models.Customer.id)))
    unknown = sorted(given for lowered, given in named.items() if lowered not in known)
    if known and unknown:
        keys = ", ".join(f'[billing.overrides."{customer}"]' for customer in unknown)
        raise ConfigError(
            f"config file {settings.source}: {keys}: no customer with this id in Partner "
            "Center; fix the id (a customer tenant id) or remove the override"
        )


def _suspended_since(session: Session) -> dict[str, date | None]:
    """When each subscription's latest suspension was seen; None when it was the first sight.

    A sync records every status it sees change, the first sight of a subscription
    included (old status none): a subscription first seen suspended was suspended
    before pcsync knew it, on a date Partner Center does not give.
    """
    history = models.SubscriptionStatusChange
    rows = session.execute(
        select(history.subscription_id, history.old_status, history.observed_at)
        .where(
            history.new_status == "suspended",
            history.old_status.is_distinct_from(history.new_status),  # not an auto-renew change
        )
        .order_by(history.observed_at, history.id)
    )
    return {
        sub_id: None if old_status is None else observed.date()
        for sub_id, old_status, observed in rows
    }


def _is_new_commerce(product_type: str | None) -> bool:
    # Partner Center's product type of new-commerce licences, e.g. "OnlineServicesNCE".
    return product_type is not None and product_type.lower().endswith("nce")


def _billed(session: Session, dates: dict[str, date], *where: Any) -> list[BilledLine]:
    """Lines summed per invoice, customer and currency, from the sums the sync keeps."""
    sums: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    rows = plain_rows(
        session,
        [
            models.LineSum.invoice_id,
            models.LineSum.customer_id,
            models.LineSum.currency,
            models.LineSum.subtotal,
            models.LineSum.total_for_customer,
        ],
        *where,
    )
    for invoice_id, customer_id, currency, subtotal, total in rows:
        group = sums[(invoice_id, customer_id, currency)]  # summed over providers
        group[0] += money(subtotal)
        group[1] += money(total)
    return [
        BilledLine(invoice_id, dates[invoice_id], customer_id, currency, subtotal, total)
        for (invoice_id, customer_id, currency), (subtotal, total) in sums.items()
        if invoice_id in dates
    ]


def load_inputs(session: Session, settings: Settings, as_of: date) -> Inputs:
    """Everything the reconciliation needs, as plain records."""
    suspended = _suspended_since(session)
    invoices = [
        (
            InvoiceFact(
                i.id,
                i.invoice_date,
                i.currency,
                i.total_charges,
                i.billing_period_start,
                i.billing_period_end,
                i.amends_invoice_id,
            ),
            i.paid_amount,
        )
        for i in session.scalars(select(models.Invoice))
    ]
    latest = latest_by_currency(h for h, _ in invoices if h.invoice_date <= as_of)
    delisted = set(
        session.scalars(select(models.Customer.id).where(models.Customer.delisted_at.is_not(None)))
    )
    subscriptions = [
        SubscriptionFact(
            s.id,
            s.customer_id,
            s.status,
            s.quantity,
            s.billing_type,
            s.billing_cycle,
            s.effective_start_date.date() if s.effective_start_date else None,
            suspended.get(s.id) if s.status == "suspended" else None,
            new_commerce=_is_new_commerce(s.product_type),
            term_end=s.commitment_end_date.date() if s.commitment_end_date else None,
            listed=s.delisted_at is None and s.customer_id not in delisted,
        )
        for s in session.scalars(select(models.Subscription))
    ]
    suspended_ids = [s.id for s in subscriptions if s.status == "suspended"]
    latest_ids = [h.id for h in latest.values()]
    return Inputs(
        as_of=as_of,
        invoices=invoices,
        billed=_billed(session, {h.id: h.invoice_date for h, _ in invoices}),
        lines=finding_candidates(session, latest_ids, suspended_ids),
        billed_on_latest=billed_on_latest(session, latest_ids),
        subscriptions=subscriptions,
        customers=dict(session.execute(select(models.Customer.id, models.Customer.name)).all()),
        payments=[
            Payment(reference, customer, day(paid_on), money(amount), currency, invoice)
            for reference, customer, paid_on, amount, currency, invoice in plain_rows(
                session,
                [
                    models.Payment.reference,
                    models.Payment.customer_id,
                    models.Payment.payment_date,
                    models.Payment.amount,
                    models.Payment.currency,
                    models.Payment.invoice_id,
                ],
                models.Payment.voided_at.is_(None),
            )
        ],
        terms=billing_terms(settings),
        microsoft_terms_days=settings.billing.microsoft_payment_terms_days,
    )


def customer_charges(
    session: Session, settings: Settings, customers: Any, as_of: date
) -> list[Charge]:
    """The charges of some customers, as the reconciliation as of ``as_of`` makes them.

    ``customers`` is a SQL selection of customer ids (a subquery), so that a
    payment import's preview reads only the sums of the customers it touches.
    """
    invoices = models.Invoice
    headers = session.execute(
        select(invoices.id, invoices.invoice_date, invoices.amends_invoice_id).where(
            invoices.invoice_date <= as_of
        )
    ).all()
    dates = {invoice_id: issued for invoice_id, issued, _ in headers}
    amends = {invoice_id: amended for invoice_id, _, amended in headers if amended is not None}
    billed = _billed(session, dates, models.LineSum.customer_id.in_(customers))
    owed = [line for line in billed if line.customer_id]
    return build_charges(owed, billing_terms(settings), amends)
