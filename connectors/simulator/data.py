"""The simulator's world: a deterministic CSP partner with customers, subscriptions and bills.

``Dataset`` is what the server serves and what tests change: the generated world
(``world``), its records as the API's JSON (``documents``), lookups, and the
changes that happen to it after generation — a subscription's status or term,
a credit note, the customers' payments (``payments``).

What the data holds, on purpose, because real bills hold it too: several
currencies (one invoice per currency and month), NCE monthly and annual
subscriptions, an Azure plan, a subscription suspended by someone else but
still billed, a seat mismatch, a line billed twice, a credit line, a
mid-period purchase with a prorated charge, a line for an unknown
subscription, an active licence billed on no invoice, and customers who pay
early, late, partly or not at all (``payments_csv``).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connectors.simulator.catalog import amount, iso
from connectors.simulator.documents import Documents
from connectors.simulator.payments import payments_csv
from connectors.simulator.world import Invoice, Line, Scale

__all__ = ["Dataset", "Invoice", "Scale", "new_version", "public"]


class Dataset(Documents):
    """The simulated partner's data, deterministic from the scale, seed and anchor date."""

    # -- lookups -------------------------------------------------------------------------

    def find_subscription(self, customer_id: str, subscription_id: str) -> dict[str, Any] | None:
        """The stored subscription object (mutable: PATCH changes it)."""
        for sub in self.subscriptions.get(customer_id, []):
            if sub["id"] == subscription_id:
                return sub
        return None

    def customer_index(self, customer_id: str) -> int:
        """Position of a customer in the list (drives its payer profile)."""
        return next(i for i, c in enumerate(self.customers) if c["id"] == customer_id)

    def invoice(self, invoice_id: str) -> Invoice | None:
        """The invoice or amendment with this id, if any."""
        documents = (d for inv in self.invoices for d in (inv, *inv.amendments))
        return next((d for d in documents if d.id == invoice_id), None)

    def line_count(self, invoice: Invoice) -> int:
        """How many lines the invoice has."""
        return len(invoice.base_lines) + invoice.filler

    def _amount(self, minor: int, currency: str) -> Decimal:
        return amount(minor, currency)

    # -- what happens after generation -----------------------------------------------------

    def set_status(self, customer_id: str, subscription_id: str, status: str) -> None:
        """Someone else (an admin in the portal) sets a subscription's status: a new etag."""
        found = self.find_subscription(customer_id, subscription_id)
        assert found is not None, subscription_id
        found["status"] = status
        found["suspensionReasons"] = ["PartnerInitiated"] if status == "suspended" else []
        new_version(found)

    def renew_subscription(self, customer_id: str, subscription_id: str, on: date) -> None:
        """Microsoft renews a new-commerce subscription on ``on`` for another year: the
        term moves on and a new seven-day cancellation window opens."""
        found = self.find_subscription(customer_id, subscription_id)
        if found is None:
            raise ValueError(f"no subscription {subscription_id}")
        end = date(on.year + 1, on.month, min(on.day, 28)) - timedelta(days=1)
        found["commitmentEndDate"] = iso(end)
        found["cancellationAllowedUntilDate"] = iso(on + timedelta(days=7))

    def switch_currency(self, old: str, new: str) -> None:
        """Bill the customers and documents billed in ``old`` in ``new`` instead: the same
        amounts in minor units, taxed at ``new``'s rate (as Croatian partners' euro customers
        were billed in HRK, the kuna, until 2023)."""
        for tenant, currency in self.currency_of.items():
            if currency == old:
                self.currency_of[tenant] = new
        for document in (d for inv in self.invoices for d in (inv, *inv.amendments)):
            if document.currency == old:
                document.currency = new
                self._total(document)

    def issue_credit_note(self, invoice_id: str, issued: date, lines: int = 2) -> Invoice:
        """A credit note against an invoice, issued on ``issued``: a document of its own
        (its own id, date, total and lines — each the reverse of one of the invoice's
        first ``lines`` lines), listed inside the invoice's ``amendments``."""
        parent = self.invoice(invoice_id)
        if parent is None or parent.amends is not None:
            raise ValueError(f"no invoice {invoice_id} to amend")
        credits = [
            Line(line.customer, line.subscription, "customerCredit", line.quantity,
                 -line.unit_minor, -line.subtotal_minor, line.start, line.end,
                 credit_reason="BillingError")
            for line in parent.base_lines[:lines]
        ]  # fmt: skip
        number = sum(len(i.amendments) for i in self.invoices) + 1
        note = Invoice(
            id=f"G{(self.scale.seed * 7919 + 500_000 + number) % 10**9:09d}",
            currency=parent.currency,
            period_start=parent.period_start,
            period_end=parent.period_end,
            invoice_date=issued,
            base_lines=credits,
            amends=parent.id,
        )
        self._total(note)
        parent.amendments.append(note)
        return note

    # -- the partner's customers' payments --------------------------------------------------

    def payments_csv(self, markup_percent: Decimal = Decimal(0)) -> str:
        """Sample payments of the partner's customers (see ``payments.payments_csv``)."""
        return payments_csv(self, markup_percent)


def new_version(sub: dict[str, Any]) -> None:
    """A stored subscription changed: the next version, with a new etag."""
    version = int(sub.get("_version", 0)) + 1
    sub["_version"] = version
    sub["attributes"] = {
        **sub["attributes"],
        "etag": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sub['id']}/{version}")),
    }


def public(sub: dict[str, Any]) -> dict[str, Any]:
    """A stored subscription without the simulator's private markers."""
    return {k: v for k, v in sub.items() if not k.startswith("_")}
