"""A customer's statement: one customer and currency, as of a date, in the partner's name.

Pure: built from the customer's :class:`~reconciliation.ledger.CustomerLedger`
(its charges, payments and how they were applied), the products billed on each
charge (summed from Microsoft's lines) and the partner's statement settings.
Every figure that the reconciliation also reports — balance, overdue amount,
days overdue, aging, credit — is the ledger's own, so a statement never
disagrees with ``pcsync reconcile --json``.

A charge is named by its billing period ("October 2026"); the Microsoft invoice
it comes from is named only when the partner chooses to show it. Payment references
often quote Microsoft's invoice ids (the payer copied them from a remittance advice,
or the partner's bank import added them); unless the partner shows invoice ids, each
one quoted is replaced by the name of its charge ("PAY-October 2026-003").
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from reconciliation.aging import age
from reconciliation.ledger import CustomerLedger, CustomerTerms
from reconciliation.money import ZERO, money_text, round_money

__all__ = [
    "ChargeStatement",
    "LineSummary",
    "PaidPart",
    "PaymentStatement",
    "ProductLine",
    "Statement",
    "StatementParty",
    "build_statement",
    "quantity_text",
]


@dataclass(frozen=True, slots=True)
class LineSummary:
    """Microsoft's lines of one invoice for one customer, summed per product, SKU and price."""

    invoice_id: str
    product: str
    sku: str
    unit_price: Decimal | None  # Microsoft's price to the partner
    quantity: Decimal | None
    subtotal: Decimal  # Microsoft's pre-tax cost of these lines


@dataclass(frozen=True, slots=True)
class StatementParty:
    """Who the statement is from and how to pay (``[statements]``, ``[notifications]``)."""

    partner_name: str
    address: str = ""
    contact: str = ""
    payment_instructions: str = ""
    show_microsoft_invoice: bool = False


@dataclass(frozen=True, slots=True)
class ProductLine:
    """A product on a charge: quantity, unit price and amount after the partner's markup (net)."""

    product: str
    sku: str
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PaidPart:
    """Part of a payment (or credit note) that settled a charge, and when.

    ``reference`` is the payment's, or for a credit note the other charge's label: on the
    charge it settled, the note's; on the note, the charge's (its amount below zero).
    """

    reference: str
    paid_on: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ChargeStatement:
    """One charge as the customer sees it.

    ``label`` names it by billing period; ``invoice_id`` is Microsoft's invoice and
    is shown only when the partner chooses to. ``open`` is the unpaid part.
    """

    label: str
    invoice_id: str
    period_start: date | None
    period_end: date | None
    charge_date: date
    due_date: date
    net: Decimal
    tax: Decimal
    gross: Decimal
    paid: tuple[PaidPart, ...]
    open: Decimal
    overdue: bool
    days_past_due: int
    products: tuple[ProductLine, ...]


@dataclass(frozen=True, slots=True)
class PaymentStatement:
    """A payment received and where it went: the charges it paid (by label) and any credit."""

    reference: str
    paid_on: date
    amount: Decimal
    applied_to: tuple[tuple[str, Decimal], ...]
    credit: Decimal


@dataclass(frozen=True)
class Statement:
    """One customer's statement in one currency as of a date."""

    party: StatementParty
    customer_id: str
    customer_name: str
    currency: str
    as_of: date
    charges: tuple[ChargeStatement, ...]
    payments: tuple[PaymentStatement, ...]
    charged_net: Decimal
    charged_tax: Decimal
    charged: Decimal
    paid: Decimal
    credit: Decimal
    balance: Decimal
    overdue_amount: Decimal
    days_overdue: int
    aging: Mapping[str, Decimal]
    stage: str | None  # the collections stage reached, None when at none
    stage_known: bool  # False: no collections plan is stored for this date

    def charge_name(self, charge: ChargeStatement) -> str:
        """How the charge is named to the customer (with the invoice id only if shown)."""
        if self.party.show_microsoft_invoice:
            return f"{charge.label} (Microsoft invoice {charge.invoice_id})"
        return charge.label

    def document(self) -> dict[str, Any]:
        """The statement as a JSON-ready document: amounts as exact decimal strings."""
        text = money_text(self.currency)
        show = self.party.show_microsoft_invoice
        return {
            "partner": {
                "name": self.party.partner_name,
                "address": self.party.address,
                "contact": self.party.contact,
                "payment_instructions": self.party.payment_instructions,
            },
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "currency": self.currency,
            "as_of": self.as_of.isoformat(),
            "charges": [_charge_json(c, text, show=show) for c in self.charges],
            "payments": [
                {
                    "reference": p.reference,
                    "payment_date": p.paid_on.isoformat(),
                    "amount": text(p.amount),
                    "applied_to": [{"charge": lbl, "amount": text(a)} for lbl, a in p.applied_to],
                    "credit": text(p.credit),
                }
                for p in self.payments
            ],
            "charged_net": text(self.charged_net),
            "charged_tax": text(self.charged_tax),
            "charged": text(self.charged),
            "paid": text(self.paid),
            "credit": text(self.credit),
            "balance": text(self.balance),
            "overdue_amount": text(self.overdue_amount),
            "days_overdue": self.days_overdue,
            "aging": {bucket: text(value) for bucket, value in self.aging.items()},
            "collections_stage": self.stage,
            "collections_plan_stored": self.stage_known,
        }


def _charge_json(charge: ChargeStatement, text: Any, *, show: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "charge": charge.label,
        "period_start": charge.period_start.isoformat() if charge.period_start else None,
        "period_end": charge.period_end.isoformat() if charge.period_end else None,
        "charge_date": charge.charge_date.isoformat(),
        "due_date": charge.due_date.isoformat(),
        "net": text(charge.net),
        "tax": text(charge.tax),
        "gross": text(charge.gross),
        "paid": [
            {"reference": p.reference, "date": p.paid_on.isoformat(), "amount": text(p.amount)}
            for p in charge.paid
        ],
        "open": text(charge.open),
        "overdue": charge.overdue,
        "days_past_due": charge.days_past_due,
        "products": [
            {
                "product": p.product,
                "sku": p.sku,
                "quantity": None if p.quantity is None else quantity_text(p.quantity),
                "unit_price": None if p.unit_price is None else text(p.unit_price),
                "amount": text(p.amount),
            }
            for p in charge.products
        ],
    }
    if show:
        row["microsoft_invoice"] = charge.invoice_id
    return row


def quantity_text(quantity: Decimal) -> str:
    """A quantity without trailing zeros and never in exponent form ("20", not "2E+1")."""
    return format(quantity.normalize(), "f")


# Not calendar.month_name: that follows the process's locale.
_MONTHS = (  # noqa: SIM905 - the twelve names read better on one line
    "January February March April May June July August September October November December"
).split()


def _period_label(start: date | None, charge_date: date) -> str:
    day = start or charge_date
    return f"{_MONTHS[day.month - 1]} {day.year}"


def _labels(
    ledger: CustomerLedger, periods: Mapping[str, tuple[date | None, date | None]]
) -> dict[str, str]:
    """Each charge's name by period; charges of one period are numbered, credit notes said so."""
    base = {}
    for charge in ledger.charges:
        label = _period_label(periods.get(charge.invoice_id, (None, None))[0], charge.charge_date)
        base[charge.invoice_id] = f"Credit, {label}" if charge.amount < 0 else label
    counts = Counter(base.values())
    seen: Counter[str] = Counter()
    labels = {}
    for charge in ledger.charges:
        label = base[charge.invoice_id]
        if counts[label] > 1:
            seen[label] += 1
            label = f"{label} ({seen[label]})"
        labels[charge.invoice_id] = label
    return labels


def _products(
    lines: Iterable[LineSummary], terms: CustomerTerms, currency: str
) -> dict[str, tuple[ProductLine, ...]]:
    """Each invoice's products after markup, adding up to the charge's net to the cent.

    The charge's net is rounded once, from the invoice's whole cost; rounding each
    product on its own could miss it by a cent per product. Each product gets what
    the rounded running total grows by, so the products add up to the rounded total.
    """
    markup = 1 + terms.markup_percent / 100
    by_invoice: dict[str, list[LineSummary]] = defaultdict(list)
    for line in lines:
        by_invoice[line.invoice_id].append(line)
    products = {}
    for invoice, rows in by_invoice.items():
        rows.sort(key=lambda line: (line.product, line.sku, line.unit_price or ZERO))
        exact = shown = ZERO
        found = []
        for line in rows:
            exact += line.subtotal * markup
            amount = round_money(exact, currency) - shown
            shown += amount
            price = None if line.unit_price is None else line.unit_price * markup
            found.append(ProductLine(line.product, line.sku, line.quantity, price, amount))
        products[invoice] = tuple(found)
    return products


@lru_cache(maxsize=4)
def _invoice_pattern(invoice_ids: frozenset[str]) -> re.Pattern[str] | None:
    # Longest first, so an id that contains another is replaced whole.
    ids = sorted((i for i in invoice_ids if i), key=lambda i: (-len(i), i))
    return re.compile("|".join(map(re.escape, ids)), re.IGNORECASE) if ids else None


def _reference_shown(
    party: StatementParty, invoice_ids: frozenset[str], labels: Mapping[str, str]
) -> Callable[[str], str]:
    """How a payment reference is shown: as given, or with Microsoft's invoice ids named
    by their charge (an invoice of another customer or currency: "invoice")."""
    pattern = None if party.show_microsoft_invoice else _invoice_pattern(invoice_ids)
    if pattern is None:
        return lambda reference: reference
    by_upper = {i.upper(): label for i, label in labels.items()}

    def shown(reference: str) -> str:
        return pattern.sub(lambda m: by_upper.get(m.group(0).upper(), "invoice"), reference)

    return shown


def build_statement(
    ledger: CustomerLedger,
    *,
    customer_name: str,
    party: StatementParty,
    terms: CustomerTerms,
    periods: Mapping[str, tuple[date | None, date | None]],
    lines: Iterable[LineSummary],
    stage: str | None,
    stage_known: bool,
    invoice_ids: frozenset[str] = frozenset(),
) -> Statement:
    """The statement of one ledger; ``periods`` maps an invoice to its billing period.

    ``invoice_ids``: every Microsoft invoice id known, kept out of payment references
    unless the partner shows invoice ids (the ledger's own are always kept out).
    """
    labels = _labels(ledger, periods)
    own = frozenset(labels)
    # The same set for every customer of a run keeps the compiled pattern cached.
    hidden = invoice_ids if own <= invoice_ids else invoice_ids | own
    reference = _reference_shown(party, hidden, labels)
    products = _products(lines, terms, ledger.currency)
    payment_dates = {p.reference: p.payment_date for p in ledger.payments}
    paid_parts: dict[str, list[PaidPart]] = defaultdict(list)
    applied_to: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    credit: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for note in ledger.credits:
        # Both rows add up (gross − settled = open): the charge settled by the note, and
        # the note, used up by that charge.
        paid_parts[note.invoice_id].append(
            PaidPart(labels[note.note_id], note.applied_on, note.amount)
        )
        paid_parts[note.note_id].append(
            PaidPart(labels[note.invoice_id], note.applied_on, -note.amount)
        )
    for application in ledger.applications:
        day = payment_dates[application.reference]
        if application.invoice_id is None:
            credit[application.reference] += application.amount
            continue
        paid_parts[application.invoice_id].append(
            PaidPart(reference(application.reference), day, application.amount)
        )
        applied_to[application.reference].append(
            (labels[application.invoice_id], application.amount)
        )
    converted_in: list[PaymentStatement] = []
    for conversion in ledger.conversions:  # a payment in EUR settling a charge in HRK
        if conversion.currency == ledger.currency:  # the payment's side: where it went
            applied_to[conversion.reference].append(
                (f"the {conversion.settled_currency} charge ({conversion})", conversion.amount)
            )
            continue
        shown = f"{reference(conversion.reference)} ({conversion})"
        paid_parts[conversion.invoice_id].append(
            PaidPart(shown, conversion.paid_on, conversion.settled)
        )
        label = labels[conversion.invoice_id]
        converted_in.append(
            PaymentStatement(
                shown, conversion.paid_on, conversion.settled, ((label, conversion.settled),), ZERO
            )
        )
    overdue = {charge.invoice_id for charge, _ in ledger.overdue_charges()}
    charges = tuple(
        ChargeStatement(
            label=labels[c.invoice_id],
            invoice_id=c.invoice_id,
            period_start=periods.get(c.invoice_id, (None, None))[0],
            period_end=periods.get(c.invoice_id, (None, None))[1],
            charge_date=c.charge_date,
            due_date=c.due_date,
            net=c.net,
            tax=c.tax,
            gross=c.amount,
            paid=tuple(sorted(paid_parts.get(c.invoice_id, ()), key=lambda p: p.paid_on)),
            open=ledger.open_amounts[c.invoice_id],
            overdue=c.invoice_id in overdue,
            days_past_due=max(0, (ledger.as_of - c.due_date).days),
            products=products.get(c.invoice_id, ()),
        )
        for c in ledger.charges
    )
    received = [
        PaymentStatement(
            reference=reference(p.reference),
            paid_on=p.payment_date,
            amount=p.amount,
            applied_to=tuple(applied_to.get(p.reference, ())),
            credit=credit.get(p.reference, ZERO),
        )
        for p in ledger.payments
    ]
    payments = tuple(sorted(received + converted_in, key=lambda p: p.paid_on))
    return Statement(
        party=party,
        customer_id=ledger.customer_id,
        customer_name=customer_name,
        currency=ledger.currency,
        as_of=ledger.as_of,
        charges=charges,
        payments=payments,
        charged_net=ledger.charged - ledger.charged_tax,
        charged_tax=ledger.charged_tax,
        charged=ledger.charged,
        paid=ledger.paid,
        credit=ledger.unapplied,
        balance=ledger.balance,
        overdue_amount=ledger.overdue_amount,
        days_overdue=ledger.days_overdue,
        aging=age(ledger),
        stage=stage,
        stage_known=stage_known,
    )
