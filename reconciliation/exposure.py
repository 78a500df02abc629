"""What the partner owes Microsoft, per invoice and per customer, beside what customers paid.

Each Microsoft invoice is due ``microsoft_payment_terms_days`` after its date;
outstanding = total − paid. A customer's share of an invoice is the sum of its
lines' ``totalForCustomer``; the part of that share the partner has already paid
is proportional to how much of the invoice is paid. The exposure is what the
partner owes or has paid Microsoft for the customer minus what the customer has
paid the partner: positive means the partner is out of pocket.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from reconciliation.ledger import BilledLine
from reconciliation.money import ZERO, round_money

__all__ = ["CustomerExposure", "MicrosoftInvoice", "customer_exposure", "microsoft_invoices"]


@dataclass(frozen=True, slots=True)
class MicrosoftInvoice:
    """A Microsoft invoice with its payment position as of a date."""

    id: str
    invoice_date: date
    currency: str
    total: Decimal
    paid: Decimal
    due_date: date
    lines_total: Decimal

    @property
    def outstanding(self) -> Decimal:
        """Still owed to Microsoft."""
        return self.total - self.paid

    def days_to_due(self, as_of: date) -> int:
        """Days until due (negative: days overdue)."""
        return (self.due_date - as_of).days


@dataclass(frozen=True, slots=True)
class CustomerExposure:
    """Per customer and currency: Microsoft's bill for them, paid and owed, and the exposure."""

    customer_id: str
    currency: str
    microsoft_charges: Decimal
    paid_to_microsoft: Decimal
    owed_to_microsoft: Decimal
    customer_paid: Decimal

    @property
    def exposure(self) -> Decimal:
        """Microsoft's charges for the customer minus what the customer has paid the partner."""
        return self.microsoft_charges - self.customer_paid


def microsoft_invoices(
    headers: Iterable[tuple[str, date, str, Decimal, Decimal]],
    lines: Iterable[BilledLine],
    terms_days: int,
    as_of: date,
) -> list[MicrosoftInvoice]:
    """Invoices dated on or before ``as_of`` with due date and the sum of their lines."""
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        sums[line.invoice_id] += line.total_for_customer
    return sorted(
        (
            MicrosoftInvoice(
                invoice_id,
                day,
                currency,
                total,
                paid,
                day + timedelta(days=terms_days),
                sums[invoice_id],
            )
            for invoice_id, day, currency, total, paid in headers
            if day <= as_of
        ),
        key=lambda i: (i.invoice_date, i.id),
    )


def customer_exposure(
    invoices: Iterable[MicrosoftInvoice],
    lines: Iterable[BilledLine],
    customer_paid: dict[tuple[str, str], Decimal],
) -> list[CustomerExposure]:
    """Per customer and currency: Microsoft charges, the partner's paid and owed share."""
    by_id = {invoice.id: invoice for invoice in invoices}
    charges: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    paid: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        invoice = by_id.get(line.invoice_id)
        if invoice is None:
            continue
        key = (line.customer_id, line.currency)
        charges[key] += line.total_for_customer
        if invoice.total:
            paid[key] += line.total_for_customer * min(invoice.paid / invoice.total, Decimal(1))
    result = []
    for key in sorted(set(charges) | set(customer_paid)):
        currency = key[1]
        paid_share = round_money(paid[key], currency)
        result.append(
            CustomerExposure(
                customer_id=key[0],
                currency=currency,
                microsoft_charges=charges[key],
                paid_to_microsoft=paid_share,
                owed_to_microsoft=charges[key] - paid_share,
                customer_paid=customer_paid.get(key, ZERO),
            )
        )
    return result
