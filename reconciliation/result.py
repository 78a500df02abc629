"""One reconciliation as of a date: ledger, aging, exposure and findings, and its JSON document.

``reconcile`` is pure: the same inputs give the same result, and
``ReconciliationResult.document`` gives the same JSON, byte for byte. Amounts
are rounded half-up to the currency's minor unit here, at presentation, into the
typed rows of ``ReconciliationResult.reconciled`` (``reconciliation.document``),
which write the document and read a stored one back.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from operator import itemgetter
from typing import Any

from reconciliation.aging import age
from reconciliation.checks import Finding, InvoiceFact, LineFact, SubscriptionFact, check_bill
from reconciliation.document import CustomerRow, FindingRow, InvoiceRow, PaymentRow, Reconciled
from reconciliation.exposure import (
    CustomerExposure,
    MicrosoftInvoice,
    customer_exposure,
    microsoft_invoices,
)
from reconciliation.ledger import (
    BilledLine,
    BillingTerms,
    CustomerLedger,
    Payment,
    build_charges,
    build_ledgers,
)
from reconciliation.money import ZERO, round_money

__all__ = ["Inputs", "ReconciliationResult", "reconcile"]


@dataclass(frozen=True)
class Inputs:
    """Everything a reconciliation reads (loaded by the application from its database)."""

    as_of: date
    invoices: Sequence[tuple[InvoiceFact, Decimal]]  # header, amount paid to Microsoft
    # Every billed line, or lines pre-summed per invoice, customer and currency (the same to
    # every rule); customer "" for lines without one.
    billed: Sequence[BilledLine]
    # Lines that can raise a finding (all lines will do; see check_bill).
    lines: Sequence[LineFact]
    subscriptions: Sequence[SubscriptionFact]
    customers: Mapping[str, str]  # id → name
    payments: Sequence[Payment]
    terms: BillingTerms
    microsoft_terms_days: int = 60
    # (invoice id, subscription id) of every line of each currency's latest invoice as of
    # ``as_of``; when given, ``lines`` of those invoices may be only seat charges.
    billed_on_latest: Collection[tuple[str, str | None]] | None = None


@dataclass(frozen=True)
class ReconciliationResult:
    """Ledgers, Microsoft invoices, exposure and findings as of ``as_of``."""

    as_of: date
    ledgers: list[CustomerLedger]
    invoices: list[MicrosoftInvoice]
    exposure: list[CustomerExposure]
    findings: list[Finding]
    customer_names: Mapping[str, str]

    @cached_property
    def reconciled(self) -> Reconciled:
        """The result's rows as shown and stored: amounts rounded to their currency."""
        return Reconciled(
            as_of=self.as_of,
            customers=self._customers(),
            invoices=[self._invoice(invoice) for invoice in self.invoices],
            findings=[_finding(f) for f in self.findings],
            payments=self._payments(),
        )

    @cached_property
    def document(self) -> dict[str, Any]:
        """The ``pcsync reconcile --json`` document (built once)."""
        return self.reconciled.to_document()

    def _payments(self) -> list[PaymentRow]:
        """Each payment counted, with where it went: the invoices it paid, and any credit."""
        keyed: list[tuple[str, date, str, PaymentRow]] = []
        for ledger in self.ledgers:
            rounded = _rounding(ledger.currency)
            name = self.customer_names.get(ledger.customer_id, ledger.customer_id)
            paid_to: dict[str, list[str]] = defaultdict(list)
            applied: dict[str, Decimal] = defaultdict(lambda: ZERO)
            for application in ledger.applications:
                if application.invoice_id:
                    paid_to[application.reference].append(application.invoice_id)
                    applied[application.reference] += application.amount
            for conversion in ledger.conversions:  # a payment here settling an HRK charge
                if conversion.currency == ledger.currency:
                    paid_to[conversion.reference].append(conversion.invoice_id)
                    applied[conversion.reference] += conversion.amount
            for payment in ledger.payments:
                reference, day = payment.reference, payment.payment_date
                used = applied.get(reference, ZERO)
                row = PaymentRow(
                    reference=reference,
                    customer_id=payment.customer_id,
                    customer_name=name,
                    payment_date=day,
                    currency=ledger.currency,
                    amount=rounded(payment.amount),
                    applied=rounded(used),
                    unapplied=rounded(payment.amount - used),
                    applied_to=tuple(paid_to.get(reference, [])),
                )
                keyed.append((payment.customer_id, day, reference, row))
        keyed.sort(key=itemgetter(0, 1, 2))  # references are unique: a total order
        return [row for *_, row in keyed]

    def _customers(self) -> list[CustomerRow]:
        exposure = {(e.customer_id, e.currency): e for e in self.exposure}
        rows = []
        for ledger in self.ledgers:
            c = ledger.currency
            e = exposure.get((ledger.customer_id, c))
            rows.append(
                CustomerRow(
                    customer_id=ledger.customer_id,
                    customer_name=self.customer_names.get(ledger.customer_id, ledger.customer_id),
                    currency=c,
                    microsoft_cost=_money(sum((ch.cost for ch in ledger.charges), ZERO), c),
                    microsoft_cost_with_tax=_money(
                        sum((ch.cost_with_tax for ch in ledger.charges), ZERO), c
                    ),
                    charged=_money(ledger.charged, c),
                    charged_net=_money(ledger.charged - ledger.charged_tax, c),
                    charged_tax=_money(ledger.charged_tax, c),
                    paid=_money(ledger.paid, c),
                    unapplied_credit=_money(ledger.unapplied, c),
                    balance=_money(ledger.balance, c),
                    overdue_amount=_money(ledger.overdue_amount, c),
                    days_overdue=ledger.days_overdue,
                    aging={bucket: _money(value, c) for bucket, value in age(ledger).items()},
                    paid_to_microsoft=_money(e.paid_to_microsoft if e else ZERO, c),
                    owed_to_microsoft=_money(e.owed_to_microsoft if e else ZERO, c),
                    exposure=_money(e.exposure if e else ZERO, c),
                    exposure_microsoft_tax=_money(e.unpaid_tax if e else ZERO, c),
                )
            )
        return rows

    def _invoice(self, invoice: MicrosoftInvoice) -> InvoiceRow:
        c = invoice.currency
        return InvoiceRow(
            invoice_id=invoice.id,
            amends=invoice.amends,
            invoice_date=invoice.invoice_date,
            currency=c,
            total=_money(invoice.total, c),
            lines_total=_money(invoice.lines_total, c),
            difference=_money(invoice.total - invoice.lines_total, c),
            paid=_money(invoice.paid, c),
            due_date=invoice.due_date,
            outstanding=_money(invoice.outstanding, c),
            days_to_due=invoice.days_to_due(self.as_of),
        )


@functools.cache
def _rounding(currency: str) -> Callable[[Decimal], Decimal]:
    """Rounding to ``currency`` as :func:`round_money` does, the quantum looked up once (a
    document may hold hundreds of thousands of amounts)."""
    quantum = round_money(Decimal(1), currency)  # quantize reads only its exponent

    def rounded(value: Decimal) -> Decimal:
        return value.quantize(quantum, rounding=ROUND_HALF_UP)

    return rounded


def _money(value: Decimal, currency: str) -> Decimal:
    return _rounding(currency)(value)


def _finding(finding: Finding) -> FindingRow:
    amount = finding.amount
    return FindingRow(
        kind=finding.kind,
        customer_id=finding.customer_id,
        subscription_id=finding.subscription_id,
        invoice_id=finding.invoice_id,
        amount=None if amount is None else _money(amount, finding.currency or "USD"),
        currency=finding.currency,
        detail=finding.detail,
    )


def reconcile(inputs: Inputs) -> ReconciliationResult:
    """Run every rule over the inputs, counting only what is dated on or before ``as_of``."""
    headers = [(h, paid) for h, paid in inputs.invoices if h.invoice_date <= inputs.as_of]
    counted = {h.id for h, _ in headers}
    billed = [line for line in inputs.billed if line.invoice_id in counted]
    lines = [line for line in inputs.lines if line.invoice_id in counted]
    owed = [line for line in billed if line.customer_id]
    amends = {h.id: h.amends for h, _ in headers if h.amends is not None}
    charges = build_charges(owed, inputs.terms, amends)
    ledgers = build_ledgers(charges, inputs.payments, inputs.as_of)
    invoices = microsoft_invoices(
        [(h.id, h.invoice_date, h.currency, h.total_charges, paid) for h, paid in headers],
        billed,
        inputs.microsoft_terms_days,
        inputs.as_of,
        amends,
    )
    currencies: dict[str, set[str]] = defaultdict(set)
    for line in owed:
        currencies[line.customer_id].add(line.currency)
    findings = check_bill(
        [h for h, _ in headers],
        lines,
        inputs.subscriptions,
        list(inputs.customers),
        invoice_sums={i.id: i.lines_total for i in invoices},
        customer_currencies=currencies,
        billed_on_latest=inputs.billed_on_latest,
    )
    return ReconciliationResult(
        as_of=inputs.as_of,
        ledgers=ledgers,
        invoices=invoices,
        exposure=customer_exposure(invoices, owed, ledgers),
        findings=findings,
        customer_names=inputs.customers,
    )
