"""Checks of Microsoft's bill against itself and against the subscriptions.

Each check takes plain records and returns findings as values; a discrepancy is
never an exception. Kinds: ``invoice_total_mismatch``, ``seat_mismatch``,
``billed_for_suspended``, ``active_not_billed``, ``duplicate_line``,
``unknown_customer``, ``unknown_subscription``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from reconciliation.money import ZERO, tolerance

__all__ = [
    "SEAT_CHARGES",
    "Finding",
    "InvoiceFact",
    "LineFact",
    "SubscriptionFact",
    "check_bill",
    "latest_by_currency",
]

# Charge types that bill a period's seats (NCE and legacy spellings, compared lower-case).
SEAT_CHARGES = frozenset(
    {"cyclecharge", "cycle fee", "renew", "renew fees", "new", "purchase", "cyclefee"}
)


@dataclass(frozen=True, slots=True)
class InvoiceFact:
    """A Microsoft invoice's header."""

    id: str
    invoice_date: date
    currency: str
    total_charges: Decimal
    period_start: date | None
    period_end: date | None
    amends: str | None = None  # a credit or adjustment note: the invoice it amends


@dataclass(frozen=True, slots=True)
class LineFact:
    """A billed line.

    ``content_hash`` + ``occurrence`` identify repeats of a byte-identical line.
    The fields after them say what was billed — product, SKU, quantity, unit
    price and, for usage and reservations, meter, usage date and reservation
    order — and decide whether two lines are a possible duplicate whatever
    their identifiers (order ids, alternate ids); ``None`` where the line has none.
    """

    invoice_id: str
    customer_id: str | None
    subscription_id: str | None
    currency: str
    subtotal: Decimal
    total_for_customer: Decimal
    billable_quantity: Decimal | None
    charge_type: str | None
    charge_start: date | None
    charge_end: date | None
    content_hash: str
    occurrence: int
    product_id: str | None = None
    sku_id: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    meter_id: str | None = None
    usage_date: str | None = None
    reservation_order_id: str | None = None

    @property
    def says_what_it_bills(self) -> bool:
        """Whether the line names its subscription, charge period, quantity and unit price."""
        return None not in (
            self.subscription_id,
            self.charge_start,
            self.charge_end,
            self.quantity,
            self.unit_price,
        )

    def billed_as(self) -> tuple[object, ...]:
        """What was billed: equal for two lines that bill the same thing twice.

        A line that does not say what it bills (``says_what_it_bills``) is alike
        only to its byte-identical repeats.
        """
        if not self.says_what_it_bills:
            return (self.invoice_id, self.content_hash)
        return (
            self.invoice_id,
            self.customer_id,
            self.subscription_id,
            self.product_id,
            self.sku_id,
            self.charge_type,
            self.charge_start,
            self.charge_end,
            self.quantity,
            self.unit_price,
            self.meter_id,
            self.usage_date,
            self.reservation_order_id,
        )


@dataclass(frozen=True, slots=True)
class SubscriptionFact:
    """A subscription as last synced.

    ``suspended_since`` starts its current suspension; for a suspended
    subscription it is ``None`` when pcsync first saw it already suspended
    (Partner Center gives no suspension date). ``new_commerce`` subscriptions
    are billed by Microsoft until ``term_end`` whatever their status. ``listed``
    is False when Microsoft no longer lists it, or no longer lists its customer:
    its status is the last one seen, not Microsoft's now.
    """

    id: str
    customer_id: str
    status: str
    quantity: int
    billing_type: str | None
    billing_cycle: str | None
    effective_start: date | None
    suspended_since: date | None
    new_commerce: bool = False
    term_end: date | None = None
    listed: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """One discrepancy, with the evidence a finance team needs to act on it."""

    kind: str
    customer_id: str | None
    subscription_id: str | None
    invoice_id: str | None
    amount: Decimal | None
    currency: str | None
    detail: str


def _invoice_totals(invoices: Sequence[InvoiceFact], sums: Mapping[str, Decimal]) -> list[Finding]:
    findings = []
    for invoice in invoices:
        line_sum = sums.get(invoice.id, ZERO)
        difference = invoice.total_charges - line_sum
        if abs(difference) > tolerance(invoice.currency):
            findings.append(
                Finding(
                    "invoice_total_mismatch",
                    None,
                    None,
                    invoice.id,
                    difference,
                    invoice.currency,
                    f"invoice total {invoice.total_charges} {invoice.currency}, its lines add up "
                    f"to {sums[invoice.id]} {invoice.currency}",
                )
            )
    return findings


def latest_by_currency(invoices: Iterable[InvoiceFact]) -> dict[str, InvoiceFact]:
    """Each currency's latest invoice (by date, then id); amendments are not invoices here:
    a credit note issued later does not replace the period's bill."""
    latest: dict[str, InvoiceFact] = {}
    bills = (i for i in invoices if i.amends is None)
    for invoice in sorted(bills, key=lambda i: (i.invoice_date, i.id)):
        latest[invoice.currency] = invoice
    return latest


def _seat_checks(
    latest: dict[str, InvoiceFact],
    lines: Sequence[LineFact],
    subscriptions: dict[str, SubscriptionFact],
) -> list[Finding]:
    latest_ids = {invoice.id for invoice in latest.values()}
    billed: dict[tuple[str, str], tuple[Decimal, LineFact]] = {}
    for line in lines:
        kind = (line.charge_type or "").lower()
        if (
            line.invoice_id not in latest_ids
            or line.subscription_id is None
            or line.subtotal <= 0
            or kind not in SEAT_CHARGES
            or line.occurrence > 1
        ):
            continue
        key = (line.invoice_id, line.subscription_id)
        seats = line.billable_quantity or ZERO
        if key not in billed or seats > billed[key][0]:
            billed[key] = (seats, line)
    findings = []
    for (invoice_id, sub_id), (seats, line) in sorted(billed.items()):
        sub = subscriptions.get(sub_id)
        if sub is None or sub.billing_type != "license" or seats == sub.quantity:
            continue
        findings.append(
            Finding(
                "seat_mismatch",
                sub.customer_id,
                sub_id,
                invoice_id,
                line.subtotal,
                line.currency,
                f"billed for {seats} seats, the subscription has {sub.quantity}",
            )
        )
    return findings


def _suspended_checks(
    latest: dict[str, InvoiceFact],
    lines: Sequence[LineFact],
    subscriptions: dict[str, SubscriptionFact],
) -> list[Finding]:
    latest_ids = {invoice.id for invoice in latest.values()}
    findings = []
    for line in lines:
        sub = subscriptions.get(line.subscription_id or "")
        if (
            sub is None
            or sub.status != "suspended"
            or line.invoice_id not in latest_ids
            or line.subtotal <= 0
        ):
            continue
        since = sub.suspended_since
        if since is not None and (line.charge_start is None or line.charge_start < since):
            continue
        period = f"{line.charge_start or '?'}–{line.charge_end or '?'}"
        if since is None:
            detail = (
                f"billed {period} while suspended; suspension date unknown "
                "(already suspended when pcsync first saw it)"
            )
        else:
            detail = f"billed {period} while suspended since {since}"
        if sub.new_commerce:
            ends = f"on {sub.term_end}" if sub.term_end else "(date unknown)"
            detail += (
                "; new commerce: Microsoft's normal billing, not an error — it bills a suspended "
                f"subscription until its term ends {ends}; this is the cost of keeping it suspended"
            )
        findings.append(
            Finding(
                "billed_for_suspended",
                sub.customer_id,
                sub.id,
                line.invoice_id,
                line.subtotal,
                line.currency,
                detail,
            )
        )
    return findings


def _not_billed_checks(
    latest: dict[str, InvoiceFact],
    on_invoice: Collection[tuple[str, str | None]],
    subscriptions: dict[str, SubscriptionFact],
    currencies: Mapping[str, set[str]],
) -> list[Finding]:
    findings = []
    for sub in sorted(subscriptions.values(), key=lambda s: s.id):
        # Only monthly licences are on every invoice; usage plans may have nothing to bill.
        # One Microsoft no longer lists is active only as last seen: it is not billed now.
        if (
            not sub.listed
            or sub.status != "active"
            or sub.billing_type != "license"
            or sub.billing_cycle != "monthly"
        ):
            continue
        for currency in sorted(currencies.get(sub.customer_id, ())):
            invoice = latest.get(currency)
            if invoice is None or (invoice.id, sub.id) in on_invoice:
                continue
            started = sub.effective_start
            if started and invoice.period_end and started > invoice.period_end:
                continue  # bought after the period: nothing to bill yet
            findings.append(
                Finding(
                    "active_not_billed",
                    sub.customer_id,
                    sub.id,
                    invoice.id,
                    None,
                    currency,
                    f"active licence subscription ({sub.quantity} seats) has no line on the "
                    f"latest {currency} invoice {invoice.id}",
                )
            )
    return findings


def _duplicate_checks(lines: Sequence[LineFact]) -> list[Finding]:
    """One finding per group of lines that bill the same thing on one invoice.

    A group of byte-identical lines may come without its first occurrence (the
    lines that can raise a finding are its repeats): its size is the highest
    occurrence, and what the repeats add is the sum of the lines after the first.
    """
    groups: dict[tuple[object, ...], list[LineFact]] = defaultdict(list)
    for line in lines:
        groups[line.billed_as()].append(line)
    findings = []
    for group in groups.values():
        first = group[0]
        if first.says_what_it_bills:
            count, repeats = len(group), group[1:]
            what = " ".join(p for p in (first.product_id, first.sku_id, first.charge_type) if p)
            billed = (
                f"bill the same {what or 'charge'} for {first.charge_start}–{first.charge_end}, "
                f"quantity {first.quantity}, unit price {first.unit_price}"
            )
        else:
            count = max(line.occurrence for line in group)
            repeats = [line for line in group if line.occurrence > 1]
            billed = "are identical"
        if not repeats:
            continue
        added = sum((line.subtotal for line in repeats), ZERO)
        findings.append(
            Finding(
                "duplicate_line",
                first.customer_id,
                first.subscription_id,
                first.invoice_id,
                added,
                first.currency,
                f"possible duplicate: {count} lines on {first.invoice_id} {billed}; "
                f"the repeats add {added} {first.currency}",
            )
        )
    return findings


def _line_identity_checks(
    lines: Sequence[LineFact], customers: set[str], subscriptions: dict[str, SubscriptionFact]
) -> list[Finding]:
    findings = []
    for line in lines:
        if line.customer_id is not None and line.customer_id not in customers:
            findings.append(
                Finding(
                    "unknown_customer",
                    line.customer_id,
                    line.subscription_id,
                    line.invoice_id,
                    line.subtotal,
                    line.currency,
                    "line for a customer Partner Center does not list",
                )
            )
        elif line.subscription_id is not None and line.subscription_id not in subscriptions:
            findings.append(
                Finding(
                    "unknown_subscription",
                    line.customer_id,
                    line.subscription_id,
                    line.invoice_id,
                    line.subtotal,
                    line.currency,
                    "line for a subscription the customer does not have",
                )
            )
    return findings


def check_bill(
    invoices: Iterable[InvoiceFact],
    lines: Iterable[LineFact],
    subscriptions: Iterable[SubscriptionFact],
    customers: Iterable[str],
    *,
    invoice_sums: Mapping[str, Decimal] | None = None,
    customer_currencies: Mapping[str, set[str]] | None = None,
    billed_on_latest: Collection[tuple[str, str | None]] | None = None,
) -> list[Finding]:
    """Every finding about the bill, in a stable order.

    With ``invoice_sums`` (sum of ``totalForCustomer`` per invoice) and
    ``customer_currencies`` given, ``lines`` may be only the lines that can
    raise a finding: those of each currency's latest invoice, every line of a
    possible duplicate group (same ``LineFact.billed_as``), lines of suspended
    subscriptions and lines of unknown customers or subscriptions.
    With ``billed_on_latest`` too (invoice id and subscription id of every line
    of each currency's latest invoice), the latest invoices' lines may be only
    their seat charges (``SEAT_CHARGES``).
    """
    invoice_list = list(invoices)
    line_list = list(lines)
    subs = {sub.id: sub for sub in subscriptions}
    latest = latest_by_currency(invoice_list)
    if invoice_sums is None:
        sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in line_list:
            sums[line.invoice_id] += line.total_for_customer
        invoice_sums = sums
    if customer_currencies is None:
        currencies: dict[str, set[str]] = defaultdict(set)
        for line in line_list:
            if line.customer_id:
                currencies[line.customer_id].add(line.currency)
        customer_currencies = currencies
    findings = (
        _invoice_totals(invoice_list, invoice_sums)
        + _seat_checks(latest, line_list, subs)
        + _suspended_checks(latest, line_list, subs)
        + _not_billed_checks(
            latest,
            billed_on_latest
            if billed_on_latest is not None
            else {(line.invoice_id, line.subscription_id) for line in line_list},
            subs,
            customer_currencies,
        )
        + _duplicate_checks(line_list)
        + _line_identity_checks(line_list, set(customers), subs)
    )
    return sorted(
        findings,
        key=lambda f: (
            f.kind,
            f.invoice_id or "",
            f.customer_id or "",
            f.subscription_id or "",
            f.detail,
        ),
    )
