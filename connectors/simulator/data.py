"""The simulator's world: a deterministic CSP partner with customers, subscriptions and bills.

Everything follows from ``seed`` and the scale (customers, months of invoices,
lines per invoice) and from ``anchor`` (the simulated "today"). Line items are
never all held in memory: each is computed from its invoice and index, so an
invoice of a million lines costs only what is being sent.

What the data holds, on purpose, because real bills hold it too: several
currencies (one invoice per currency and month), NCE monthly and annual
subscriptions, an Azure plan, a subscription suspended by someone else but
still billed, a seat mismatch, a line billed twice, a credit line, a
mid-period purchase with a prorated charge, a line for an unknown
subscription, an active licence billed on no invoice, and customers who pay
early, late, partly or not at all (``payments_csv``).
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["Dataset", "Scale"]

# (product id, sku, name, USD price per seat and month)
OFFERS = [
    ("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", "6.00"),
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Standard", "12.50"),
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Premium", "22.00"),
    ("CFQ7TTC0LFLX", "0001", "Microsoft 365 E3", "36.00"),
    ("CFQ7TTC0LH16", "0001", "Exchange Online (Plan 1)", "4.00"),
    ("CFQ7TTC0RM8K", "0001", "Microsoft Teams Essentials", "4.00"),
    ("CFQ7TTC0HL8W", "0001", "Microsoft Defender for Business", "3.00"),
]
AZURE_PLAN = ("DZH318Z0BPS6", "0001", "Azure plan")
CURRENCIES = {  # currency: (rate from USD, tax rate, minor unit exponent)
    "USD": (Decimal("1"), Decimal("0.08"), -2),
    "EUR": (Decimal("0.92"), Decimal("0.19"), -2),
    "GBP": (Decimal("0.79"), Decimal("0.20"), -2),
    "JPY": (Decimal("150"), Decimal("0.10"), 0),
}
PAYER_PROFILES = ["prompt", "early", "late", "partial", "never", "prompt", "overpay", "prompt"]
COMPANY_WORDS = [
    "Contoso", "Fabrikam", "Northwind", "Tailspin", "Litware", "Adatum", "Proseware",
    "Woodgrove", "Lucerne", "Wingtip", "Alpine", "Coho", "Fourth Coffee", "Margie's",
]  # fmt: skip


def _guid(*parts: object) -> str:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _iso(moment: date | datetime) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{moment.isoformat()}T00:00:00Z"


def _link(uri: str) -> dict[str, Any]:
    return {"uri": uri, "method": "GET", "headers": []}


def _month_start(day: date, months_back: int) -> date:
    year, month = day.year, day.month - months_back
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, 1)


def _month_end(start: date) -> date:
    return date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])


@dataclass(frozen=True)
class Scale:
    """How big the simulated partner is."""

    customers: int = 12
    invoices: int = 6  # months of invoices (one invoice per currency and month)
    lines_per_invoice: int = 0  # 0: as many as the subscriptions give; more adds usage lines
    seed: int = 7


@dataclass
class _Line:
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
class _Invoice:
    id: str
    currency: str
    period_start: date
    period_end: date
    invoice_date: date
    base_lines: list[_Line] = field(default_factory=list)
    filler: int = 0
    total_minor: int = 0
    subtotal_minor: int = 0
    amends: str | None = None  # a credit note's invoice
    amendments: list[_Invoice] = field(default_factory=list)


class Dataset:
    """The simulated partner's data, deterministic from the scale, seed and anchor date."""

    def __init__(self, scale: Scale = Scale(), anchor: date | None = None) -> None:
        self.scale = scale
        self.anchor = anchor or datetime.now(UTC).date()
        self.partner_tenant_id = _guid("partner", scale.seed)
        self._rng = random.Random(scale.seed)
        self.customers: list[dict[str, Any]] = []
        self.currency_of: dict[str, str] = {}
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}
        self._build_customers()
        self.invoices: list[_Invoice] = []
        self._build_invoices()
        # Fields to override in one record's JSON, to serve what pcsync cannot read:
        # "customer:<id>", "invoice:<id>", "line:<invoice id>:<position>",
        # "unbilled:<currency>:<position>".
        self.malformed: dict[str, dict[str, Any]] = {}

    # -- customers and subscriptions ---------------------------------------------------

    def _build_customers(self) -> None:
        for index in range(self.scale.customers):
            tenant = _guid("customer", self.scale.seed, index)
            word = COMPANY_WORDS[index % len(COMPANY_WORDS)]
            suffix = "" if index < len(COMPANY_WORDS) else f" {index // len(COMPANY_WORDS) + 1}"
            name = f"{word}{suffix} Ltd"
            domain = f"{word.lower().replace(' ', '').replace(chr(39), '')}{index}.onmicrosoft.com"
            currency = "EUR" if index % 4 == 3 else "JPY" if index == 9 else "USD"
            self.currency_of[tenant] = currency
            self.customers.append(
                {
                    "id": tenant,
                    "commerceId": _guid("commerce", tenant),
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
            created = _month_start(self.anchor, rng.randint(8, 30)) + timedelta(
                days=rng.randint(0, 20)
            )
            if index == 5 and n == 0:
                # Bought mid-way through the last billed month: a prorated first charge.
                created = _month_start(self.anchor, 1) + timedelta(days=14)
            subs.append(
                self._subscription(
                    tenant, index, n, offer, rng.randint(3, 40), created, annual=annual
                )
            )
        if index % 2 == 0:
            created = _month_start(self.anchor, 20)
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
                    "id": _guid("entitlement", self.scale.seed, index, k),
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
        sub_id = _guid("subscription", self.scale.seed, index, n)
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
            "creationDate": _iso(
                datetime(created.year, created.month, created.day, 10, 2, 11, tzinfo=UTC)
            ),
            "effectiveStartDate": _iso(created),
            "commitmentEndDate": _iso(term_end),
            # New commerce: cancellable for a prorated refund within seven days of the
            # purchase or of each renewal (learn.microsoft.com "new-commerce cancellation
            # policy"), so the window follows the latest renewal.
            "cancellationAllowedUntilDate": _iso(term_start + timedelta(days=7)),
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
            "attributes": {"etag": _guid("etag", sub_id, 0), "objectType": "Subscription"},
        }

    def find_subscription(self, customer_id: str, subscription_id: str) -> dict[str, Any] | None:
        """The stored subscription object (mutable: PATCH changes it)."""
        for sub in self.subscriptions.get(customer_id, []):
            if sub["id"] == subscription_id:
                return sub
        return None

    def renew_subscription(self, customer_id: str, subscription_id: str, on: date) -> None:
        """Microsoft renews a new-commerce subscription on ``on`` for another year: the
        term moves on and a new seven-day cancellation window opens."""
        found = self.find_subscription(customer_id, subscription_id)
        if found is None:
            raise ValueError(f"no subscription {subscription_id}")
        end = date(on.year + 1, on.month, min(on.day, 28)) - timedelta(days=1)
        found["commitmentEndDate"] = _iso(end)
        found["cancellationAllowedUntilDate"] = _iso(on + timedelta(days=7))

    def customer_index(self, customer_id: str) -> int:
        """Position of a customer in the list (drives its payer profile)."""
        return next(i for i, c in enumerate(self.customers) if c["id"] == customer_id)

    # -- invoices and lines ----------------------------------------------------------

    def _price_minor(self, usd: str, currency: str) -> int:
        rate, _, exponent = CURRENCIES[currency]
        price = (Decimal(usd) * rate).quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)
        return int(price.scaleb(-exponent))

    def _tax_minor(self, subtotal_minor: int, currency: str) -> int:
        tax = (Decimal(subtotal_minor) * CURRENCIES[currency][1]).quantize(
            Decimal(1), ROUND_HALF_UP
        )
        return int(tax)

    def _build_invoices(self) -> None:
        currencies = sorted(set(self.currency_of.values()))
        counter = 0
        for months_back in range(self.scale.invoices, 0, -1):
            start = _month_start(self.anchor, months_back)
            end = _month_end(start)
            invoice_date = end + timedelta(days=5)
            for currency in currencies:
                counter += 1
                invoice = _Invoice(
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

    def _lines_for(self, invoice: _Invoice, *, latest: bool) -> list[_Line]:
        lines: list[_Line] = []
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
                    _Line(index, credit.subscription, "customerCredit", 0, 0,
                          -credit.subtotal_minor // 4, invoice.period_start, invoice.period_end,
                          credit_reason="PriceAdjustment")
                )  # fmt: skip
        if latest:
            dup = next((line for line in lines if line.customer == 1), None)
            if dup is not None:
                lines.append(dup)  # Microsoft billed this line twice
            ghost = next((line for line in lines if line.customer == 6), None)
            if ghost is not None:
                unknown = dict(ghost.subscription, id=_guid("ghost", self.scale.seed))
                lines.append(
                    _Line(6, unknown, "cycleCharge", 1, ghost.unit_minor, ghost.unit_minor,
                          invoice.period_start, invoice.period_end)
                )  # fmt: skip
        return lines

    def _cycle_line(
        self, index: int, sub: dict[str, Any], invoice: _Invoice, *, latest: bool
    ) -> _Line | None:
        if sub["billingType"] != "license" or (latest and sub.get("_notBilledLatest")):
            return None
        created = date.fromisoformat(sub["effectiveStartDate"][:10])
        if created > invoice.period_end:
            return None
        offer = next(o for o in OFFERS if o[2] == sub["offerName"])
        unit = self._price_minor(offer[3], invoice.currency)
        quantity = sub["quantity"]
        if latest and index == 2 and sub is self.subscriptions[self.customers[2]["id"]][0]:
            quantity += 2  # billed for more seats than the subscription has
        start, end = invoice.period_start, invoice.period_end
        if sub["billingCycle"] == "annual":
            if created.month != start.month:
                return None
            unit *= 12
            return _Line(index, sub, "renew", quantity, unit, unit * quantity, start, end)
        if created > start:
            days = (end - created).days + 1
            total_days = (end - start).days + 1
            subtotal = (unit * quantity * days) // total_days
            return _Line(index, sub, "new", quantity, unit, subtotal, created, end)
        return _Line(index, sub, "cycleCharge", quantity, unit, unit * quantity, start, end)

    def _filler_minor(self, invoice: _Invoice, position: int) -> tuple[int, int]:
        # Cheap, deterministic usage amounts for scale tests: no RNG object per line.
        value = (position * 2654435761 + self.scale.seed) % 100000
        subtotal = 100 + value % 9900
        return subtotal, self._tax_minor(subtotal, invoice.currency)

    def _total(self, invoice: _Invoice) -> None:
        subtotal = sum(line.subtotal_minor for line in invoice.base_lines)
        total = sum(
            line.subtotal_minor + self._tax_minor(line.subtotal_minor, invoice.currency)
            for line in invoice.base_lines
        )
        for position in range(invoice.filler):
            sub_minor, tax_minor = self._filler_minor(invoice, position)
            subtotal += sub_minor
            total += sub_minor + tax_minor
        invoice.subtotal_minor, invoice.total_minor = subtotal, total

    def invoice(self, invoice_id: str) -> _Invoice | None:
        """The invoice or amendment with this id, if any."""
        documents = (d for inv in self.invoices for d in (inv, *inv.amendments))
        return next((d for d in documents if d.id == invoice_id), None)

    def issue_credit_note(self, invoice_id: str, issued: date, lines: int = 2) -> _Invoice:
        """A credit note against an invoice, issued on ``issued``: a document of its own
        (its own id, date, total and lines — each the reverse of one of the invoice's
        first ``lines`` lines), listed inside the invoice's ``amendments``."""
        parent = self.invoice(invoice_id)
        if parent is None or parent.amends is not None:
            raise ValueError(f"no invoice {invoice_id} to amend")
        credits = [
            _Line(line.customer, line.subscription, "customerCredit", line.quantity,
                  -line.unit_minor, -line.subtotal_minor, line.start, line.end,
                  credit_reason="BillingError")
            for line in parent.base_lines[:lines]
        ]  # fmt: skip
        number = sum(len(i.amendments) for i in self.invoices) + 1
        note = _Invoice(
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

    def line_count(self, invoice: _Invoice) -> int:
        """How many lines the invoice has."""
        return len(invoice.base_lines) + invoice.filler

    def _amount(self, minor: int, currency: str) -> Decimal:
        return Decimal(minor).scaleb(CURRENCIES[currency][2])

    def invoice_json(self, invoice: _Invoice) -> dict[str, Any]:
        """The invoice as ``GET /v1/invoices`` lists it."""
        total = self._amount(invoice.total_minor, invoice.currency)
        # The partner has paid Microsoft for invoices older than 40 days.
        paid = total if (self.anchor - invoice.invoice_date).days > 40 else Decimal(0)
        if invoice.amends is not None:
            paid = Decimal(0)
        document: dict[str, Any] = {
            "id": invoice.id,
            "invoiceDate": _iso(invoice.invoice_date).replace("T00:00:00Z", "T22:40:37.5897767Z"),
            "billingPeriodStartDate": _iso(invoice.period_start),
            "billingPeriodEndDate": _iso(invoice.period_end),
            "totalCharges": total,
            "paidAmount": -paid,
            "currencyCode": invoice.currency,
            "currencySymbol": {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}[invoice.currency],
            "invoiceDetails": [
                {
                    "invoiceLineItemType": "billing_line_items",
                    "billingProvider": "one_time",
                    "links": {
                        "self": _link(
                            f"/invoices/OneTime-{invoice.id}/lineitems/OneTime/BillingLineItems"
                        )
                    },
                    "attributes": {"objectType": "InvoiceDetail"},
                }
            ],
            "documentType": "invoice",
            "invoiceType": "OneTime",
            "links": {"self": _link(f"/invoices/OneTime-{invoice.id}")},
            "attributes": {"objectType": "Invoice"},
        }
        if invoice.amends is not None:
            # As in Microsoft's example of an amendment: no links, not on its details either.
            del document["links"]
            del document["invoiceDetails"][0]["links"]
            document["documentType"] = "adjustment_note"
            document["amendsOf"] = invoice.amends
        elif invoice.amendments:
            document["amendments"] = [self.invoice_json(note) for note in invoice.amendments]
        document.update(self.malformed.get(f"invoice:{invoice.id}", {}))
        return document

    def line_json(self, invoice: _Invoice, position: int) -> dict[str, Any]:
        """Line ``position`` of the invoice as a v1 ``OneTimeInvoiceLineItem`` (camelCase)."""
        currency = invoice.currency
        if position < len(invoice.base_lines):
            line = invoice.base_lines[position]
            customer = self.customers[line.customer]
            sub = line.subscription
            unit = self._amount(line.unit_minor, currency)
            subtotal_minor = line.subtotal_minor
            quantity, charge, start, end = line.quantity, line.charge_type, line.start, line.end
            product, sku = sub["offerId"].split(":")[:2]
            name, credit = sub["offerName"], line.credit_reason
            # From the charge, not the position: a line billed twice is identical.
            identity = f"{invoice.id}:{sub['id']}:{charge}:{start}:{subtotal_minor}"
        else:
            filler = position - len(invoice.base_lines)
            owners = [c for c in self.customers if self.currency_of[c["id"]] == currency]
            customer = owners[filler % len(owners)]
            subs = self.subscriptions[customer["id"]]
            sub = subs[filler % len(subs)]
            subtotal_minor, _ = self._filler_minor(invoice, filler)
            unit = self._amount(subtotal_minor, currency)
            quantity, charge = 1, "usage"
            start, end = invoice.period_start, invoice.period_end
            product, sku = sub["offerId"].split(":")[:2]
            name, credit = sub["offerName"], ""
            identity = f"{invoice.id}:{position}"
        tax_minor = self._tax_minor(subtotal_minor, currency)
        profile = customer["companyProfile"]
        return {
            "partnerId": self.partner_tenant_id,
            "customerId": f"org:{customer['id']}",
            "customerName": profile["companyName"],
            "customerDomainName": profile["domain"],
            "customerCountry": {"USD": "US", "EUR": "DE", "GBP": "GB", "JPY": "JP"}[currency],
            "invoiceNumber": invoice.id,
            "mpnId": "4870137",
            "resellerMpnId": 0,
            "orderId": sub["orderId"],
            "orderDate": sub["creationDate"],
            "productId": product,
            "skuId": sku,
            "availabilityId": f"{product[:6]}K971",
            "productName": name,
            "skuName": name,
            "productQualifiers": [],
            "chargeType": charge,
            "unitPrice": unit,
            "effectiveUnitPrice": unit,
            "unitType": sub["unitType"],
            "quantity": quantity,
            "subtotal": self._amount(subtotal_minor, currency),
            "taxTotal": self._amount(tax_minor, currency),
            "totalForCustomer": self._amount(subtotal_minor + tax_minor, currency),
            "currency": currency,
            "publisherName": "Microsoft Corporation",
            "publisherId": "",
            "subscriptionDescription": sub["friendlyName"],
            "subscriptionId": sub["id"],
            "subscriptionStartDate": sub["effectiveStartDate"],
            "subscriptionEndDate": sub["commitmentEndDate"],
            "chargeStartDate": _iso(start),
            "chargeEndDate": _iso(end),
            "termAndBillingCycle": "1 Year Subscription" if sub["termDuration"] else "Usage",
            "alternateId": hashlib.sha1(identity.encode()).hexdigest()[:12],  # noqa: S324
            "referenceId": "",
            "priceAdjustmentDescription": "",
            "pricingCurrency": "USD",
            "pcToBCExchangeRate": CURRENCIES[currency][0],
            "pcToBCExchangeRateDate": _iso(invoice.period_start),
            "billableQuantity": quantity,
            "meterDescription": "",
            "billingFrequency": "Monthly",
            "reservationOrderId": "",
            "creditReasonCode": credit,
            "promotionId": "",
            "invoiceLineItemType": "billing_line_items",
            "billingProvider": "one_time",
            "attributes": {"objectType": "OneTimeInvoiceLineItem"},
        } | self.malformed.get(f"line:{invoice.id}:{position}", {})

    def unbilled_lines(self, currency: str, period_name: str = "current") -> list[dict[str, Any]]:
        """Lines not yet invoiced: this month's charges for the active licences
        (``current``), or last month's while its invoice is not issued (``previous``;
        nothing once it is)."""
        start = _month_start(self.anchor, 0 if period_name == "current" else 1)
        if period_name != "current" and any(
            i.period_start == start and i.currency == currency for i in self.invoices
        ):
            return []
        period = _Invoice("unbilled", currency, start, _month_end(start), _month_end(start))
        lines = []
        for index, customer in enumerate(self.customers):
            if self.currency_of[customer["id"]] != currency:
                continue
            for sub in self.subscriptions[customer["id"]]:
                line = self._cycle_line(index, sub, period, latest=False)
                if line is not None:
                    lines.append(line)
        period.base_lines = lines
        result = []
        for position in range(len(lines)):
            row = self.line_json(period, position)
            row["invoiceNumber"] = ""
            row.update(self.malformed.get(f"unbilled:{currency}:{position}", {}))
            result.append(row)
        if period_name == "current":
            result.extend(self._azure_consumption(currency, period))
        return result

    def _azure_consumption(self, currency: str, period: _Invoice) -> list[dict[str, Any]]:
        """This month's Azure consumption so far, one line per Azure subscription of a plan.

        New-commerce Azure plan lines name the Azure subscription they were used in
        (``entitlementId``, ``entitlementDescription``), as the daily-rated usage does.
        """
        rows = []
        for index, customer in enumerate(self.customers):
            if self.currency_of[customer["id"]] != currency:
                continue
            for sub in self.subscriptions[customer["id"]]:
                for k, entitlement in enumerate(sub.get("_azureEntitlements", ())):
                    minor = 1000 * (index + 1) + 250 * k
                    line = _Line(
                        index, sub, "usage", 1, minor, minor, period.period_start, self.anchor
                    )
                    period.base_lines = [line]
                    row = self.line_json(period, 0)
                    row.update(
                        invoiceNumber="",
                        entitlementId=entitlement["id"],
                        entitlementDescription=entitlement["friendlyName"],
                        termAndBillingCycle="Usage",
                    )
                    rows.append(row)
        return rows

    # -- the partner's customers' payments --------------------------------------------------

    def payments_csv(self, markup_percent: Decimal = Decimal(0)) -> str:
        """Sample payments of the partner's customers, as a finance export would hold them.

        Amounts are the customer charges (pre-tax Microsoft cost plus markup) of each
        invoice; each customer pays per its profile: prompt, early, late, partly,
        never, or more than owed. Only payments dated on or before the anchor appear.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["customer", "date", "amount", "currency", "reference", "invoice"])
        for index, customer in enumerate(self.customers):
            profile = PAYER_PROFILES[index % len(PAYER_PROFILES)]
            if profile == "never":
                continue
            currency = self.currency_of[customer["id"]]
            exponent = CURRENCIES[currency][2]
            for invoice in self.invoices:
                if invoice.currency != currency:
                    continue
                owed_minor = sum(
                    line.subtotal_minor for line in invoice.base_lines if line.customer == index
                )
                if owed_minor <= 0:
                    continue
                owed = (Decimal(owed_minor).scaleb(exponent) * (1 + markup_percent / 100)).quantize(
                    Decimal(1).scaleb(exponent), ROUND_HALF_UP
                )
                delay = {"early": 2, "late": 75, "overpay": 12}.get(profile, 20)
                paid_on = invoice.invoice_date + timedelta(days=delay)
                if paid_on > self.anchor:
                    continue
                if profile == "partial":
                    owed = (owed / 2).quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)
                if profile == "overpay" and invoice is self.invoices[0]:
                    owed = (owed * Decimal("1.1")).quantize(
                        Decimal(1).scaleb(exponent), ROUND_HALF_UP
                    )
                reference = f"PAY-{invoice.id}-{index:03d}"
                # Half the payers quote the Microsoft invoice, the others do not.
                named = invoice.id if index % 2 == 0 else ""
                who = customer["companyProfile"]["domain"] if index % 3 == 0 else customer["id"]
                writer.writerow([who, paid_on.isoformat(), str(owed), currency, reference, named])
        return buffer.getvalue()
