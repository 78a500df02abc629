"""What the partner owes Microsoft, per invoice and per customer, beside what customers paid.

Each Microsoft invoice is due ``microsoft_payment_terms_days`` after its date;
outstanding = total − paid. A customer's share of an invoice is the sum of its
lines' ``totalForCustomer``; the part of that share the partner has already paid
is proportional to how much of the invoice is paid.

The exposure of a customer is Microsoft's pre-tax cost of the customer's
charges the customer has not paid: each charge's cost (the ``subtotal`` sum it
was made from) times the unpaid share of the charge. A customer who paid every
charge has exposure 0. The tax Microsoft charged on that same unpaid share is
kept beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from reconciliation.ledger import BilledLine, CustomerLedger
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
    amends: str | None = None  # a credit or adjustment note: the invoice it amends

    @property
    def outstanding(self) -> Decimal:
        """Still owed to Microsoft."""
        return self.total - self.paid

    def days_to_due(self, as_of: date) -> int:
        """Days until due (negative: days overdue)."""
        return (self.due_date - as_of).days


@dataclass(frozen=True, slots=True)
class CustomerExposure:
    """Per customer and currency: Microsoft's bill for them, paid and owed, and the exposure.

    ``microsoft_charges`` is Microsoft's bill for the customer with tax;
    ``unpaid_cost`` the pre-tax cost of the customer's unpaid charges and
    ``unpaid_tax`` the tax Microsoft charged on it.
    """

    customer_id: str
    currency: str
    microsoft_charges: Decimal
    paid_to_microsoft: Decimal
    owed_to_microsoft: Decimal
    customer_paid: Decimal
    unpaid_cost: Decimal = ZERO
    unpaid_tax: Decimal = ZERO

    @property
    def exposure(self) -> Decimal:
        """Microsoft's pre-tax cost of what the customer has not paid."""
        return self.unpaid_cost


def microsoft_invoices(
    headers: Iterable[tuple[str, date, str, Decimal, Decimal]],
    lines: Iterable[BilledLine],
    terms_days: int,
    as_of: date,
    amends: Mapping[str, str] | None = None,
) -> list[MicrosoftInvoice]:
    """Invoices (and amendments: ``amends`` maps one to its invoice) dated on or before
    ``as_of`` with due date and the sum of their lines. Each document stands on its own:
    its total against its own lines, its own payment position. Microsoft bills a
    document in one currency: a line in another is not added to it (its total then
    differs from the lines', which the checks report) — amounts of two currencies
    are never one sum."""
    amends = amends or {}
    sums: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        sums[line.invoice_id, line.currency] += line.total_for_customer
    return sorted(
        (
            MicrosoftInvoice(
                invoice_id,
                day,
                currency,
                total,
                paid,
                day + timedelta(days=terms_days),
                sums[invoice_id, currency],
                amends.get(invoice_id),
            )
            for invoice_id, day, currency, total, paid in headers
            if day <= as_of
        ),
        key=lambda i: (i.invoice_date, i.id),
    )


def _unpaid_costs(ledger: CustomerLedger) -> tuple[Decimal, Decimal]:
    """(pre-tax cost, Microsoft's tax) of the unpaid shares of a ledger's charges."""
    cost = tax = ZERO
    for charge in ledger.charges:
        unpaid = ledger.open_amounts.get(charge.invoice_id, ZERO)
        if charge.amount <= 0 or unpaid <= 0:
            continue  # paid, or a credit: nothing the customer still owes
        share = min(unpaid / charge.amount, Decimal(1))
        cost += charge.cost * share
        tax += (charge.cost_with_tax - charge.cost) * share
    return cost, tax


def customer_exposure(
    invoices: Iterable[MicrosoftInvoice],
    lines: Iterable[BilledLine],
    ledgers: Iterable[CustomerLedger],
) -> list[CustomerExposure]:
    """Per customer and currency: Microsoft charges, the partner's paid and owed share, and
    the cost of the charges the customer has not paid."""
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
    by_key = {(ledger.customer_id, ledger.currency): ledger for ledger in ledgers}
    result = []
    for key in sorted(set(charges) | set(by_key)):
        currency = key[1]
        paid_share = round_money(paid[key], currency)
        ledger = by_key.get(key)
        unpaid_cost, unpaid_tax = _unpaid_costs(ledger) if ledger else (ZERO, ZERO)
        result.append(
            CustomerExposure(
                customer_id=key[0],
                currency=currency,
                microsoft_charges=charges[key],
                paid_to_microsoft=paid_share,
                owed_to_microsoft=charges[key] - paid_share,
                customer_paid=ledger.paid if ledger else ZERO,
                unpaid_cost=unpaid_cost,
                unpaid_tax=unpaid_tax,
            )
        )
    return result
