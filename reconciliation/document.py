"""The reconciliation's figures, typed: what ``pcsync reconcile --json`` writes, read back.

A :class:`Reconciled` holds the rows of one reconciliation as they are shown and
stored: amounts rounded to their currency's minor unit (Decimal, beside their
currency), dates as dates. :meth:`Reconciled.to_document` writes the JSON document
and :meth:`Reconciled.from_document` reads one back — the only place that parses
the document's strings — so reports work on typed rows, also for a past date's
stored reconciliation. A document stored before a field existed reads as ``None``
for that field (``charged_net``, ``charged_tax``, ``exposure_microsoft_tax``,
``amends``) or as no payments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from reconciliation.money import D

__all__ = ["CustomerRow", "FindingRow", "InvoiceRow", "PaymentRow", "Reconciled"]

AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "over_90")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _amount(value: str | None) -> Decimal | None:
    return None if value is None else D(value)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One customer's position in one currency (amounts rounded to the currency)."""

    customer_id: str
    customer_name: str
    currency: str
    microsoft_cost: Decimal
    microsoft_cost_with_tax: Decimal
    charged: Decimal  # gross: tax included
    charged_net: Decimal | None
    charged_tax: Decimal | None
    paid: Decimal
    unapplied_credit: Decimal
    balance: Decimal
    overdue_amount: Decimal
    days_overdue: int
    aging: Mapping[str, Decimal]  # bucket → amount, in AGING_BUCKETS order
    paid_to_microsoft: Decimal
    owed_to_microsoft: Decimal
    exposure: Decimal
    exposure_microsoft_tax: Decimal | None

    _AMOUNTS = (
        "microsoft_cost",
        "microsoft_cost_with_tax",
        "charged",
        "paid",
        "unapplied_credit",
        "balance",
        "overdue_amount",
        "paid_to_microsoft",
        "owed_to_microsoft",
        "exposure",
    )
    _LATER = ("charged_net", "charged_tax", "exposure_microsoft_tax")

    def to_document(self) -> dict[str, Any]:
        """The row as in the document."""
        row: dict[str, Any] = {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "currency": self.currency,
            "days_overdue": self.days_overdue,
            "aging": {bucket: str(value) for bucket, value in self.aging.items()},
        }
        row.update({key: str(getattr(self, key)) for key in self._AMOUNTS})
        row.update({key: _text(getattr(self, key)) for key in self._LATER})
        return row

    @classmethod
    def from_document(cls, row: Mapping[str, Any]) -> CustomerRow:
        """The row read from the document."""
        return cls(
            customer_id=row["customer_id"],
            customer_name=row["customer_name"],
            currency=row["currency"],
            days_overdue=row["days_overdue"],
            aging={bucket: D(value) for bucket, value in row["aging"].items()},
            charged_net=_amount(row.get("charged_net")),
            charged_tax=_amount(row.get("charged_tax")),
            exposure_microsoft_tax=_amount(row.get("exposure_microsoft_tax")),
            **{key: D(row[key]) for key in cls._AMOUNTS},
        )


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    """A Microsoft invoice: its total, what its lines add up to, paid and outstanding."""

    invoice_id: str
    amends: str | None
    invoice_date: date
    currency: str
    total: Decimal
    lines_total: Decimal
    difference: Decimal
    paid: Decimal
    due_date: date
    outstanding: Decimal
    days_to_due: int

    _AMOUNTS = ("total", "lines_total", "difference", "paid", "outstanding")

    def to_document(self) -> dict[str, Any]:
        """The row as in the document."""
        return {
            "invoice_id": self.invoice_id,
            "amends": self.amends,
            "invoice_date": self.invoice_date.isoformat(),
            "currency": self.currency,
            **{key: str(getattr(self, key)) for key in self._AMOUNTS},
            "due_date": self.due_date.isoformat(),
            "days_to_due": self.days_to_due,
        }

    @classmethod
    def from_document(cls, row: Mapping[str, Any]) -> InvoiceRow:
        """The row read from the document."""
        return cls(
            invoice_id=row["invoice_id"],
            amends=row.get("amends"),
            invoice_date=date.fromisoformat(row["invoice_date"]),
            currency=row["currency"],
            due_date=date.fromisoformat(row["due_date"]),
            days_to_due=row["days_to_due"],
            **{key: D(row[key]) for key in cls._AMOUNTS},
        )


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A discrepancy; ``amount`` is rounded to ``currency`` (USD when the finding has none)."""

    kind: str
    customer_id: str | None
    subscription_id: str | None
    invoice_id: str | None
    amount: Decimal | None
    currency: str | None
    detail: str

    def to_document(self) -> dict[str, Any]:
        """The row as in the document."""
        return {
            "kind": self.kind,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "invoice_id": self.invoice_id,
            "amount": _text(self.amount),
            "currency": self.currency,
            "detail": self.detail,
        }

    @classmethod
    def from_document(cls, row: Mapping[str, Any]) -> FindingRow:
        """The row read from the document."""
        return cls(
            kind=row["kind"],
            customer_id=row.get("customer_id"),
            subscription_id=row.get("subscription_id"),
            invoice_id=row.get("invoice_id"),
            amount=_amount(row.get("amount")),
            currency=row.get("currency"),
            detail=row["detail"],
        )


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A payment counted, with what of it was applied and to which invoices."""

    reference: str
    customer_id: str
    customer_name: str
    payment_date: date
    currency: str
    amount: Decimal
    applied: Decimal
    unapplied: Decimal
    applied_to: tuple[str, ...]

    def to_document(self) -> dict[str, Any]:
        """The row as in the document."""
        return {
            "reference": self.reference,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "payment_date": self.payment_date.isoformat(),
            "currency": self.currency,
            "amount": str(self.amount),
            "applied": str(self.applied),
            "unapplied": str(self.unapplied),
            "applied_to": list(self.applied_to),
        }

    @classmethod
    def from_document(cls, row: Mapping[str, Any]) -> PaymentRow:
        """The row read from the document."""
        return cls(
            reference=row["reference"],
            customer_id=row["customer_id"],
            customer_name=row["customer_name"],
            payment_date=date.fromisoformat(row["payment_date"]),
            currency=row["currency"],
            amount=D(row["amount"]),
            applied=D(row["applied"]),
            unapplied=D(row["unapplied"]),
            applied_to=tuple(row["applied_to"]),
        )


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One reconciliation's rows as of ``as_of``, in the document's order."""

    as_of: date
    customers: Sequence[CustomerRow]
    invoices: Sequence[InvoiceRow]
    findings: Sequence[FindingRow]
    payments: Sequence[PaymentRow]

    def to_document(self) -> dict[str, Any]:
        """The ``pcsync reconcile --json`` document."""
        return {
            "as_of": self.as_of.isoformat(),
            "customers": [row.to_document() for row in self.customers],
            "invoices": [row.to_document() for row in self.invoices],
            "findings": [row.to_document() for row in self.findings],
            "payments": [row.to_document() for row in self.payments],
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Reconciled:
        """A document (as written by :meth:`to_document`, or stored earlier) read back."""
        return cls(
            as_of=date.fromisoformat(document["as_of"]),
            customers=tuple(CustomerRow.from_document(row) for row in document["customers"]),
            invoices=tuple(InvoiceRow.from_document(row) for row in document["invoices"]),
            findings=tuple(FindingRow.from_document(row) for row in document["findings"]),
            payments=tuple(PaymentRow.from_document(r) for r in document.get("payments") or []),
        )

    def customer_names(self) -> dict[str, str]:
        """Customer id → name, for rows that name a customer by id only."""
        return {row.customer_id: row.customer_name for row in self.customers}
