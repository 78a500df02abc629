"""The simulated partner as generated: customers, subscriptions, invoices and their lines.

Everything follows from ``seed`` and the scale (customers, months of invoices,
lines per invoice) and from ``anchor`` (the simulated "today"). Lines are kept
as integer facts; ``documents`` turns them into the API's JSON on demand.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.simulator.catalog import (
    AZURE_PLAN,
    COMPANY_WORDS,
    OFFERS,
    guid,
    iso,
    month_end,
    month_start,
    price_minor,
    tax_minor,
)

__all__ = ["Invoice", "Line", "Scale", "World"]


@dataclass(frozen=True)
class Scale:
    """How big the simulated partner is."""

    customers: int = 12
    invoices: int = 6  # months of invoices (one invoice per currency and month)
    lines_per_invoice: int = 0  # 0: as many as the subscriptions give; more adds usage lines
    seed: int = 7


@dataclass
class Line:
    """A line's facts in integer minor units; turned into JSON on demand."""

    customer: int
    subscription: dict[str, Any]
    charge_type: str
    quantity: int
    unit_minor: int
    subtotal_minor: int
    start: date
    end: date
    credit_reason: str = ""


@dataclass
class Invoice:
    """An invoice (or a credit note against one) of one currency and billing month."""

    id: str
    currency: str
    period_start: date
    period_end: date
    invoice_date: date
    base_lines: list[Line] = field(default_factory=list)
    filler: int = 0
    total_minor: int = 0
    subtotal_minor: int = 0
    amends: str | None = None  # a credit note's invoice
    amendments: list[Invoice] = field(default_factory=list)


class World:
    """The generated partner, deterministic from the scale, seed and anchor date."""

    def __init__(self, scale: Scale = Scale(), anchor: date | None = None) -> None:
        self.scale = scale
        self.anchor = anchor or datetime.now(UTC).date()
        self.partner_tenant_id = guid("partner", scale.seed)
        self._rng = random.Random(scale.seed)
        self.customers: list[dict[str, Any]] = []
        self.currency_of: dict[str, str] = {}
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}
        self._build_customers()
        self.invoices: list[Invoice] = []
        self._build_invoices()
        # Fields to override in one record's JSON, to serve what pcsync cannot read:
        # "customer:<id>", "invoice:<id>", "line:<invoice id>:<position>",
        # "unbilled:<currency>:<position>".
        self.malformed: dict[str, dict[str, Any]] = {}
        # Customers whose relationship with the partner ended: the customer list leaves them
        # out and their resources answer 403 20002 ("no commerce relationship"); their
        # subscriptions and lines stay here as generated, for when one comes back.
        self.unlisted: set[str] = set()

    # -- customers and subscriptions ---------------------------------------------------

    def _build_customers(self) -> None:
        for index in range(self.scale.customers):
            tenant = guid("customer", self.scale.seed, index)
            word = COMPANY_WORDS[index % len(COMPANY_WORDS)]
            suffix = "" if index < len(COMPANY_WORDS) else f" {index // len(COMPANY_WORDS) + 1}"
            name = f"{word}{suffix} Ltd"
            domain = f"{word.lower().replace(' ', '').replace(chr(39), '')}{index}.onmicrosoft.com"
            currency = "EUR" if index % 4 == 3 else "JPY" if index == 9 else "USD"
            self.currency_of[tenant] = currency
            self.customers.append(
                {
                    "id": tenant,
                    "commerceId": guid("commerce", tenant),
                    "companyProfile": {
                        "tenantId": tenant,
                        "domain": domain,
                        "companyName": name,
                        "attributes": {"objectType": "CustomerCompanyProfile"},
                    },
                    "relationshipToPartner": "reseller",
                    "attributes": {"objectType": "Customer"},
                }
            )
            self.subscriptions[tenant] = self._subscriptions_for(index, tenant)

    def _subscriptions_for(self, index: int, tenant: str) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.scale.seed}:subs:{index}")
        subs = []
        count = 1 + rng.randint(1, 3)
        for n, offer in enumerate(rng.sample(OFFERS, count)):
            annual = n == 1 and index % 3 == 0
            created = month_start(self.anchor, rng.randint(8, 30)) + timedelta(
                days=rng.randint(0, 20)
            )
            if index == 5 and n == 0:
                # Bought mid-way through the last billed month: a prorated first charge.
                created = month_start(self.anchor, 1) + timedelta(days=14)
            subs.append(
                self._subscription(
                    tenant, index, n, offer, rng.randint(3, 40), created, annual=annual
                )
            )
        if index % 2 == 0:
            created = month_start(self.anchor, 20)
            azure = self._subscription(tenant, index, 9, (*AZURE_PLAN, "0"), 1, created)
            azure.update(
                billingType="usage",
                unitType="Usage-based",
                productType={"id": "Azure", "displayName": "Azure"},
                billingCycle="monthly",
                termDuration=None,
                autoRenewEnabled=None,
            )
            # The Azure subscriptions (entitlements) inside the plan: Microsoft refuses to
            # suspend a plan while one of them is active (900115).
            azure["_azureEntitlements"] = [
                {
                    "id": guid("entitlement", self.scale.seed, index, k),
                    "friendlyName": f"Azure subscription {k + 1}",
                    "entitlementType": "Azure",
                    "status": "active",
                }
                for k in range(2)
            ]
            subs.append(azure)
        if index == 3:
            # Suspended by someone else two months ago, still billed under NCE.
            subs[0]["status"] = "suspended"
            subs[0]["suspensionReasons"] = ["CustomerCancellation"]
            subs[0]["autoRenewEnabled"] = False
        if index == 7:
            # An active monthly licence that Microsoft did not bill on the latest invoice.
            subs[0]["_notBilledLatest"] = True
        return subs

    def _subscription(
        self,
        tenant: str,
        index: int,
        n: int,
        offer: tuple[str, str, str, str],
        quantity: int,
        created: date,
        *,
        annual: bool = False,
    ) -> dict[str, Any]:
        product, sku, name, _ = offer
        sub_id = guid("subscription", self.scale.seed, index, n)
        term_end = date(created.year + 1, created.month, min(created.day, 28)) - timedelta(days=1)
        term_start = created  # the latest purchase or renewal
        while term_end < self.anchor:
            term_start = term_end + timedelta(days=1)
            term_end = date(term_end.year + 1, term_end.month, term_end.day)
        return {
            "id": sub_id,
            "offerId": f"{product}:{sku}:{product[:6]}K971",
            "offerName": name,
            "friendlyName": name,
            "productType": {"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE"},
            "quantity": quantity,
            "unitType": "Licenses",
            "creationDate": iso(
                datetime(created.year, created.month, created.day, 10, 2, 11, tzinfo=UTC)
            ),
            "effectiveStartDate": iso(created),
            "commitmentEndDate": iso(term_end),
            # New commerce: cancellable for a prorated refund within seven days of the
            # purchase or of each renewal (learn.microsoft.com "new-commerce cancellation
            # policy"), so the window follows the latest renewal.
            "cancellationAllowedUntilDate": iso(term_start + timedelta(days=7)),
            "status": "active",
            "suspensionReasons": [],
            "autoRenewEnabled": True,
            "isTrial": False,
            "billingType": "license",
            "billingCycle": "annual" if annual else "monthly",
            "termDuration": "P1Y",
            "renewalTermDuration": "P1Y",
            "isMicrosoftProduct": True,
            "contractType": "subscription",
            "orderId": hashlib.sha1(sub_id.encode()).hexdigest()[:12],  # noqa: S324 - an id, not security
            "links": {
                "self": {
                    "uri": f"customers/{tenant}/subscriptions/{sub_id}",
                    "method": "GET",
                    "headers": [],
                }
            },
            "attributes": {"etag": guid("etag", sub_id, 0), "objectType": "Subscription"},
        }

    # -- invoices and lines ----------------------------------------------------------

    def _build_invoices(self) -> None:
        currencies = sorted(set(self.currency_of.values()))
        counter = 0
        for months_back in range(self.scale.invoices, 0, -1):
            start = month_start(self.anchor, months_back)
            end = month_end(start)
            invoice_date = end + timedelta(days=5)
            for currency in currencies:
                counter += 1
                invoice = Invoice(
                    id=f"G{(self.scale.seed * 7919 + counter) % 10**9:09d}",
                    currency=currency,
                    period_start=start,
                    period_end=end,
                    invoice_date=invoice_date,
                )
                invoice.base_lines = self._lines_for(invoice, latest=months_back == 1)
                wanted = self.scale.lines_per_invoice
                invoice.filler = max(0, wanted - len(invoice.base_lines)) if wanted else 0
                self._total(invoice)
                self.invoices.append(invoice)

    def _lines_for(self, invoice: Invoice, *, latest: bool) -> list[Line]:
        lines: list[Line] = []
        for index, customer in enumerate(self.customers):
            tenant = customer["id"]
            if self.currency_of[tenant] != invoice.currency:
                continue
            for sub in self.subscriptions[tenant]:
                line = self._cycle_line(index, sub, invoice, latest=latest)
                if line is not None:
                    lines.append(line)
            if index == 4 and not latest and lines:
                # A credit for an earlier overcharge.
                credit = lines[-1]
                lines.append(
                    Line(index, credit.subscription, "customerCredit", 0, 0,
                         -credit.subtotal_minor // 4, invoice.period_start, invoice.period_end,
                         credit_reason="PriceAdjustment")
                )  # fmt: skip
        if latest:
            dup = next((line for line in lines if line.customer == 1), None)
            if dup is not None:
                lines.append(dup)  # Microsoft billed this line twice
            ghost = next((line for line in lines if line.customer == 6), None)
            if ghost is not None:
                unknown = dict(ghost.subscription, id=guid("ghost", self.scale.seed))
                lines.append(
                    Line(6, unknown, "cycleCharge", 1, ghost.unit_minor, ghost.unit_minor,
                         invoice.period_start, invoice.period_end)
                )  # fmt: skip
        return lines

    def _cycle_line(
        self, index: int, sub: dict[str, Any], invoice: Invoice, *, latest: bool
    ) -> Line | None:
        if sub["billingType"] != "license" or (latest and sub.get("_notBilledLatest")):
            return None
        created = date.fromisoformat(sub["effectiveStartDate"][:10])
        if created > invoice.period_end:
            return None
        offer = next(o for o in OFFERS if o[2] == sub["offerName"])
        unit = price_minor(offer[3], invoice.currency)
        quantity = sub["quantity"]
        if latest and index == 2 and sub is self.subscriptions[self.customers[2]["id"]][0]:
            quantity += 2  # billed for more seats than the subscription has
        start, end = invoice.period_start, invoice.period_end
        if sub["billingCycle"] == "annual":
            if created.month != start.month:
                return None
            unit *= 12
            return Line(index, sub, "renew", quantity, unit, unit * quantity, start, end)
        if created > start:
            days = (end - created).days + 1
            total_days = (end - start).days + 1
            subtotal = (unit * quantity * days) // total_days
            return Line(index, sub, "new", quantity, unit, subtotal, created, end)
        return Line(index, sub, "cycleCharge", quantity, unit, unit * quantity, start, end)

    def _filler_minor(self, invoice: Invoice, position: int) -> tuple[int, int]:
        # Cheap, deterministic usage amounts for scale tests: no RNG object per line.
        value = (position * 2654435761 + self.scale.seed) % 100000
        subtotal = 100 + value % 9900
        return subtotal, tax_minor(subtotal, invoice.currency)

    def _total(self, invoice: Invoice) -> None:
        subtotal = sum(line.subtotal_minor for line in invoice.base_lines)
        total = sum(
            line.subtotal_minor + tax_minor(line.subtotal_minor, invoice.currency)
            for line in invoice.base_lines
        )
        for position in range(invoice.filler):
            sub_minor, tax = self._filler_minor(invoice, position)
            subtotal += sub_minor
            total += sub_minor + tax
        invoice.subtotal_minor, invoice.total_minor = subtotal, total
