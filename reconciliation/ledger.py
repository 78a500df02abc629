"""The customer ledger: charges from Microsoft's bill, payments applied, balances as of a date.

Pure functions over plain records; nothing here reads a database or a clock.

* **Charges.** Billed lines are grouped by customer, Microsoft invoice and
  currency. The group's cost is the sum of ``subtotal`` (pre-tax); the customer
  owes ``cost × (1 + markup / 100) × (1 + tax / 100)`` rounded half-up once to
  the currency's minor unit (the partner's own tax on its charge, so a customer
  who pays a tax-inclusive invoice is not left in credit), dated on the invoice
  date and due ``payment_terms_days`` later. Every line counts as Microsoft
  billed it — duplicates and credits included.
* **Payments.** Within a customer and currency, in date order, a payment goes
  first to the invoice it names (in any case: Microsoft's invoice ids are
  case-insensitive), then to the oldest open charge; what is left is a credit
  that later charges use up.
* **Withdrawn currencies.** A payment in a withdrawn currency's successor (EUR
  for HRK) naming an invoice charged in the withdrawn one settles that charge at
  the rate the law fixed (``currencies.WITHDRAWALS``), before anything else: the
  payment × the rate, rounded half-up, up to what is open; a payment of at least
  the open part converted (÷ the rate, rounded half-up to the cent, as the law
  converts an amount) settles it in full. What is left of the payment goes on in
  its own currency. Each such settlement is a ``Conversion``, in both ledgers.
* **Credit notes.** A charge below zero (a credit note's lines, net) settles the
  charge of the invoice it amends, then the oldest open ones, on its date, like a
  payment naming that invoice: a credited charge is no longer overdue.
* **As of D.** Only invoices and payments dated on or before D count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property

from reconciliation.currencies import WITHDRAWALS
from reconciliation.money import ZERO, round_money

__all__ = [
    "BilledLine",
    "BillingTerms",
    "Charge",
    "Conversion",
    "CreditApplication",
    "CustomerLedger",
    "CustomerTerms",
    "Payment",
    "PaymentApplication",
    "TermsOverride",
    "build_charges",
    "build_ledgers",
]


@dataclass(frozen=True, slots=True)
class BilledLine:
    """One billed line of a Microsoft invoice, as reconciliation needs it."""

    invoice_id: str
    invoice_date: date
    customer_id: str
    currency: str
    subtotal: Decimal
    total_for_customer: Decimal


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment a customer made; ``invoice_id`` is the Microsoft invoice it names, if any."""

    reference: str
    customer_id: str
    payment_date: date
    amount: Decimal
    currency: str
    invoice_id: str | None = None


@dataclass(frozen=True, slots=True)
class TermsOverride:
    """One customer's own terms; ``None`` keeps the partner's default."""

    markup_percent: Decimal | None = None
    payment_terms_days: int | None = None
    tax_percent: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CustomerTerms:
    """The terms one customer is charged on."""

    markup_percent: Decimal
    tax_percent: Decimal
    payment_terms_days: int


@dataclass(frozen=True, slots=True)
class BillingTerms:
    """Markup, tax and payment terms: the partner's defaults and per-customer overrides."""

    markup_percent: Decimal = ZERO
    payment_terms_days: int = 30
    overrides: Mapping[str, TermsOverride] = field(default_factory=dict)
    tax_percent: Decimal = ZERO

    def for_customer(self, customer_id: str) -> CustomerTerms:
        """Markup percent, tax percent and payment terms days for one customer."""
        own = self.overrides.get(customer_id) or TermsOverride()
        return CustomerTerms(
            self.markup_percent if own.markup_percent is None else own.markup_percent,
            self.tax_percent if own.tax_percent is None else own.tax_percent,
            self.payment_terms_days if own.payment_terms_days is None else own.payment_terms_days,
        )


@dataclass(frozen=True, slots=True)
class Charge:
    """What a customer owes the partner for one Microsoft invoice, in one currency."""

    customer_id: str
    invoice_id: str
    currency: str
    charge_date: date
    due_date: date
    cost: Decimal  # Microsoft's pre-tax cost (sum of subtotal)
    cost_with_tax: Decimal  # sum of totalForCustomer, shown beside the cost
    amount: Decimal  # what the customer owes (gross): cost plus markup plus tax, rounded once
    tax: Decimal = ZERO  # the partner's tax in ``amount``; amount − tax is the net charge
    amends: str | None = None  # a credit note's charge: the invoice it amends

    @property
    def net(self) -> Decimal:
        """The charge before the partner's tax."""
        return self.amount - self.tax


@dataclass(frozen=True, slots=True)
class PaymentApplication:
    """Part of a payment applied to a charge (``invoice_id`` None: left as credit)."""

    reference: str
    invoice_id: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CreditApplication:
    """Part of a credit note (a negative charge) that settled another charge, on its date."""

    note_id: str
    invoice_id: str
    amount: Decimal
    applied_on: date


@dataclass(frozen=True, slots=True)
class Conversion:
    """Part of a payment in a withdrawn currency's successor that settled a charge in the
    withdrawn currency at the fixed rate: "92.80 EUR at 7.53450 = 699.20 HRK"."""

    reference: str
    paid_on: date
    invoice_id: str  # the charge settled, in ``settled_currency``
    amount: Decimal  # the part of the payment, in its ``currency`` (EUR)
    currency: str
    rate: Decimal  # units of ``settled_currency`` per 1 of ``currency``
    settled: Decimal  # what it settled of the charge (HRK)
    settled_currency: str

    def __str__(self) -> str:
        return (
            f"{self.amount} {self.currency} at {self.rate} = {self.settled} {self.settled_currency}"
        )


@dataclass
class CustomerLedger:
    """One customer's position in one currency as of a date.

    Complete when built: its figures are computed on first use and kept.
    """

    customer_id: str
    currency: str
    as_of: date
    charges: list[Charge]
    payments: list[Payment]
    applications: list[PaymentApplication]
    open_amounts: dict[str, Decimal]  # invoice id → unpaid part of its charge
    credits: list[CreditApplication] = field(default_factory=list)  # what notes settled
    # Payments converted at a fixed rate: into this ledger's charges, or out of its payments.
    conversions: list[Conversion] = field(default_factory=list)

    @cached_property
    def charged(self) -> Decimal:
        """Sum of the charges, the partner's tax included (gross)."""
        return sum((c.amount for c in self.charges), ZERO)

    @cached_property
    def charged_tax(self) -> Decimal:
        """The partner's tax in the charges; ``charged - charged_tax`` is the net."""
        return sum((c.tax for c in self.charges), ZERO)

    @cached_property
    def paid(self) -> Decimal:
        """Sum of the payments (applied or not), with what payments in a successor currency
        settled here at a fixed rate, less what payments here settled in a withdrawn one."""
        into = sum(
            (c.settled for c in self.conversions if c.settled_currency == self.currency), ZERO
        )
        out = sum((c.amount for c in self.conversions if c.currency == self.currency), ZERO)
        return sum((p.amount for p in self.payments), ZERO) + into - out

    @cached_property
    def unapplied(self) -> Decimal:
        """Payments and credit notes not used by any charge: the customer's credit."""
        payments = sum((a.amount for a in self.applications if a.invoice_id is None), ZERO)
        notes = sum((-self.open_amounts[c.invoice_id] for c in self.charges if c.amount < 0), ZERO)
        return payments + notes

    @cached_property
    def balance(self) -> Decimal:
        """Charged minus paid: positive when the customer owes, negative with a credit."""
        return self.charged - self.paid

    def overdue_charges(self) -> list[tuple[Charge, Decimal]]:
        """Charges due before the as-of date with an unpaid part, oldest first."""
        return self._overdue

    @cached_property
    def _overdue(self) -> list[tuple[Charge, Decimal]]:
        return [
            (charge, self.open_amounts[charge.invoice_id])
            for charge in self.charges
            if charge.due_date < self.as_of and self.open_amounts[charge.invoice_id] > 0
        ]

    @cached_property
    def overdue_amount(self) -> Decimal:
        """Sum of the unpaid parts of overdue charges."""
        return sum((part for _, part in self.overdue_charges()), ZERO)

    @cached_property
    def days_overdue(self) -> int:
        """Days since the due date of the oldest overdue, still unpaid charge (0 if none)."""
        overdue = self.overdue_charges()
        return (self.as_of - overdue[0][0].due_date).days if overdue else 0


def build_charges(
    lines: Iterable[BilledLine],
    terms: BillingTerms,
    amends: Mapping[str, str] | None = None,
) -> list[Charge]:
    """Group billed lines into charges per customer, invoice and currency.

    ``amends`` maps an amendment (credit note) to the invoice it amends.
    """
    amends = amends or {}
    groups: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    dates: dict[str, date] = {}
    for line in lines:
        totals = groups[(line.customer_id, line.invoice_id, line.currency)]
        totals[0] += line.subtotal
        totals[1] += line.total_for_customer
        dates[line.invoice_id] = line.invoice_date
    charges = []
    for (customer_id, invoice_id, currency), (cost, with_tax) in groups.items():
        own = terms.for_customer(customer_id)
        charge_date = dates[invoice_id]
        net = cost * (1 + own.markup_percent / 100)
        gross = round_money(net * (1 + own.tax_percent / 100), currency)
        # The gross is rounded once; the net shown beside it is rounded on its own and the
        # tax is what is left, so net + tax is always the gross.
        charges.append(
            Charge(
                customer_id=customer_id,
                invoice_id=invoice_id,
                currency=currency,
                charge_date=charge_date,
                due_date=charge_date + timedelta(days=own.payment_terms_days),
                cost=cost,
                cost_with_tax=with_tax,
                amount=gross,
                tax=gross - round_money(net, currency),
                amends=amends.get(invoice_id),
            )
        )
    return sorted(charges, key=lambda c: (c.customer_id, c.currency, c.charge_date, c.invoice_id))


class _OpenCharges:
    """One ledger's charges, oldest first, with what is still open on each."""

    def __init__(self, charges: list[Charge]) -> None:
        self.charges = charges
        self.open = {c.invoice_id: c.amount for c in charges}
        # A payer copies an invoice id as it likes ("g000055451"): named in any case.
        self.named = {c.invoice_id.upper(): c.invoice_id for c in charges}
        self._first = 0  # charges before it are paid in full (FIFO only ever moves it on)

    def apply(self, payment: Payment, left: Decimal) -> list[PaymentApplication]:
        """Apply (what is left of) a payment: to the invoice it names, then oldest first; the
        rest is credit."""
        applied: list[PaymentApplication] = []

        def pay(invoice_id: str) -> None:
            nonlocal left
            part = min(left, self.open[invoice_id])
            if part > 0:
                self.open[invoice_id] -= part
                applied.append(PaymentApplication(payment.reference, invoice_id, part))
                left -= part

        named = self.named.get(payment.invoice_id.upper()) if payment.invoice_id else None
        if named is not None:
            pay(named)
        while left > 0 and self._first < len(self.charges):
            charge = self.charges[self._first]
            pay(charge.invoice_id)
            if self.open[charge.invoice_id] <= 0:
                self._first += 1
        if left > 0:
            applied.append(PaymentApplication(payment.reference, None, left))
        return applied

    def convert(self, payment: Payment, invoice_id: str, currency: str) -> Conversion | None:
        """Settle the charge in withdrawn ``currency`` a successor's payment names."""
        rate, owed = WITHDRAWALS[currency].rate, self.open[invoice_id]
        if rate is None or owed <= 0 or payment.amount <= 0:
            return None
        whole = round_money(owed / rate, payment.currency)  # the open part, converted
        amount = min(payment.amount, whole)
        settled = owed if amount == whole else min(round_money(amount * rate, currency), owed)
        self.open[invoice_id] -= settled
        return Conversion(
            payment.reference,
            payment.payment_date,
            invoice_id,
            amount,
            payment.currency,
            rate,
            settled,
            currency,
        )

    def credit(self, note: Charge) -> list[CreditApplication]:
        """Settle open charges with a negative charge: the amended invoice's first."""
        applied: list[CreditApplication] = []
        left = -self.open[note.invoice_id]
        targets = [note.amends] if note.amends in self.open else []
        targets += [c.invoice_id for c in self.charges]
        for invoice_id in targets:
            part = min(left, self.open[invoice_id])
            if part > 0:
                self.open[invoice_id] -= part
                left -= part
                applied.append(
                    CreditApplication(note.invoice_id, invoice_id, part, note.charge_date)
                )
        self.open[note.invoice_id] = -left  # what no charge could use stays on the note
        return applied


def _withdrawn_named(
    charges: Iterable[tuple[tuple[str, str], list[Charge]]],
) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(customer, successor, INVOICE ID) → (withdrawn currency, invoice id) of each charge
    a payment in the successor may settle at a fixed rate."""
    named = {}
    for (customer_id, currency), own in charges:
        gone = WITHDRAWALS.get(currency)
        if gone is not None and gone.rate is not None:
            for c in own:
                if c.amount > 0:
                    named[(customer_id, gone.by, c.invoice_id.upper())] = (currency, c.invoice_id)
    return named


def build_ledgers(
    charges: Iterable[Charge], payments: Iterable[Payment], as_of: date
) -> list[CustomerLedger]:
    """Apply payments to charges per customer and currency, counting only what is dated ≤ as_of.

    The result does not depend on the order of the inputs.
    """
    by_key_charges: dict[tuple[str, str], list[Charge]] = defaultdict(list)
    by_key_payments: dict[tuple[str, str], list[Payment]] = defaultdict(list)
    for charge in charges:
        if charge.charge_date <= as_of:
            by_key_charges[(charge.customer_id, charge.currency)].append(charge)
    for payment in payments:
        if payment.payment_date <= as_of:
            by_key_payments[(payment.customer_id, payment.currency)].append(payment)
    keys = sorted(set(by_key_charges) | set(by_key_payments))
    for key in keys:
        by_key_charges[key].sort(key=lambda c: (c.charge_date, c.invoice_id))
        by_key_payments[key].sort(key=lambda p: (p.payment_date, p.reference))
    opens = {key: _OpenCharges(by_key_charges[key]) for key in keys}
    withdrawn = _withdrawn_named(by_key_charges.items())
    applications: dict[tuple[str, str], list[PaymentApplication]] = defaultdict(list)
    credits: dict[tuple[str, str], list[CreditApplication]] = defaultdict(list)
    conversions: dict[tuple[str, str], list[Conversion]] = defaultdict(list)
    # Credit notes and payments in date order (a note before a payment of its day); a
    # customer's currencies together, as a payment may settle a charge in a withdrawn one.
    events: list[tuple[date, int, str, tuple[str, str], Charge | Payment]] = []
    for key in keys:
        notes = [c for c in by_key_charges[key] if c.amount < 0]
        events += [(c.charge_date, 0, c.invoice_id, key, c) for c in notes]
        events += [(p.payment_date, 1, p.reference, key, p) for p in by_key_payments[key]]
    for *_, key, event in sorted(events, key=lambda e: e[:4]):
        if isinstance(event, Charge):
            credits[key] += opens[key].credit(event)
            continue
        left = event.amount
        named = (event.customer_id, event.currency, (event.invoice_id or "").upper())
        if named[2] not in opens[key].named and named in withdrawn:
            currency, invoice_id = withdrawn[named]
            converted = opens[(key[0], currency)].convert(event, invoice_id, currency)
            if converted is not None:
                conversions[key].append(converted)
                conversions[(key[0], currency)].append(converted)
                left -= converted.amount
        applications[key] += opens[key].apply(event, left)
    # A payment may reach any charge dated on or before the as-of date, later ones
    # included: that is how a credit is used up by later charges.
    return [
        CustomerLedger(
            customer_id=key[0],
            currency=key[1],
            as_of=as_of,
            charges=by_key_charges[key],
            payments=by_key_payments[key],
            applications=applications[key],
            open_amounts=opens[key].open,
            credits=credits[key],
            conversions=conversions[key],
        )
        for key in keys
    ]
