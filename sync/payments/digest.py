"""The content hash of a payment: what makes a reimported reference the same payment.

A reference is unique; importing it again is fine when the payment's content
(customer, date, amount, currency, invoice) hashes the same, and an error
otherwise. The hash is ``sync.store.content_hash`` of those fields; for the
common row (nothing JSON must escape) its canonical JSON is written out
directly, a batch at a time, because an import hashes a million rows.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.payments.files import PaymentBatch
from sync.store import content_hash

__all__ = ["batch_digests", "payment_digest", "same_payment", "text_digest"]


def payment_digest(
    customer_id: str, payment_date: date, amount: Any, currency: str, invoice_id: str | None
) -> str:
    """The content hash of a payment: what makes a reimported reference the same payment."""
    return text_digest(
        customer_id, payment_date.isoformat(), str(amount), currency, invoice_id or ""
    )


def same_payment(
    customer_id: str,
    day: str,
    amount: Decimal,
    currency: str,
    invoice: str | None,
    *,
    stored_amount: Decimal,
    stored_digest: str | None,
) -> bool:
    """Whether a row whose hash differs from a stored payment's is that payment all the same.

    The hash covers the amount as written (``1234.5`` from a number cell, ``1234.50``
    from a CSV): the row is the stored payment when the amounts are equal and the
    row, its amount written as the stored one is, hashes as the stored payment does.
    """
    return amount == stored_amount and stored_digest == text_digest(
        customer_id, day, str(stored_amount), currency, invoice or ""
    )


_PLAIN_CUSTOMERS: dict[str, bool] = {}


def text_digest(customer_id: str, day: str, amount: str, currency: str, invoice: str) -> str:
    """The content hash of a payment given as text (ISO date, amount as ``str(Decimal)``)."""
    plain = _PLAIN_CUSTOMERS.get(customer_id)
    if plain is None:
        if len(_PLAIN_CUSTOMERS) > 100_000:
            _PLAIN_CUSTOMERS.clear()
        plain = _PLAIN_CUSTOMERS[customer_id] = _plain(customer_id)
    if plain and ((invoice.isalnum() and invoice.isascii()) or _plain(invoice)):
        # content_hash's canonical JSON, written out for the common case (a million rows)
        canonical = (
            f'{{"amount":"{amount}","currency":"{currency}","customer":"{customer_id}",'
            f'"date":"{day}","invoice":"{invoice}"}}'
        )
        return hashlib.sha256(canonical.encode()).hexdigest()
    return content_hash(
        {
            "customer": customer_id,
            "date": day,
            "amount": amount,
            "currency": currency,
            "invoice": invoice,
        }
    )


def _plain(value: str) -> bool:
    """Written by JSON as it is (no escapes)."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


_CANONICAL = '{{"amount":"{}","currency":"{}","customer":"{}","date":"{}","invoice":"{}"}}'


def batch_digests(batch: PaymentBatch) -> list[str]:
    """The content hashes of a batch's payments (:func:`text_digest`, a column at a time)."""
    invoices = [invoice or "" for invoice in batch.invoice_ids]
    joined = "".join(invoices)
    customers = set(batch.customer_ids)
    if (
        joined.isascii()
        and '"' not in joined
        and "\\" not in joined
        and all(map(_plain, customers))
    ):
        # content_hash's canonical JSON: the batch's values need no escapes
        texts = map(
            _CANONICAL.format,
            batch.amounts,
            batch.currencies,
            batch.customer_ids,
            batch.dates,
            invoices,
        )
        return [hashlib.sha256(text.encode()).hexdigest() for text in texts]
    return list(
        map(text_digest, batch.customer_ids, batch.dates, batch.amounts, batch.currencies, invoices)
    )
