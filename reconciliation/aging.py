"""Aging: a customer's open charges in buckets by days past due, as of a date."""

from __future__ import annotations

from decimal import Decimal

from reconciliation.ledger import CustomerLedger
from reconciliation.money import ZERO

__all__ = ["BUCKETS", "age", "bucket_of"]

# current = not yet due; then days past due.
BUCKETS = ("current", "1-30", "31-60", "61-90", "over_90")


def bucket_of(days_past_due: int) -> str:
    """The aging bucket for a charge this many days past its due date."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "over_90"


def age(ledger: CustomerLedger) -> dict[str, Decimal]:
    """Open (unpaid) parts of the ledger's charges by bucket, every bucket present."""
    buckets = dict.fromkeys(BUCKETS, ZERO)
    for charge in ledger.charges:
        part = ledger.open_amounts[charge.invoice_id]
        if part > 0:
            buckets[bucket_of((ledger.as_of - charge.due_date).days)] += part
    return buckets
