"""The simulated world as Partner Center's JSON: invoices, v1 line items, unbilled lines."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from connectors.simulator.catalog import (
    CURRENCIES,
    amount,
    iso,
    link,
    month_end,
    month_start,
    tax_minor,
)
from connectors.simulator.world import Invoice, Line, World

__all__ = ["Documents"]


class Documents(World):
    """The world's records rendered as the API serves them, with any test overrides applied."""

    def invoice_json(self, invoice: Invoice) -> dict[str, Any]:
        """The invoice as ``GET /v1/invoices`` lists it."""
        total = amount(invoice.total_minor, invoice.currency)
        # The partner has paid Microsoft for invoices older than 40 days.
        paid = total if (self.anchor - invoice.invoice_date).days > 40 else Decimal(0)
        if invoice.amends is not None:
            paid = Decimal(0)
        document: dict[str, Any] = {
            "id": invoice.id,
            "invoiceDate": iso(invoice.invoice_date).replace("T00:00:00Z", "T22:40:37.5897767Z"),
            "billingPeriodStartDate": iso(invoice.period_start),
            "billingPeriodEndDate": iso(invoice.period_end),
            "totalCharges": total,
            "paidAmount": -paid,
            "currencyCode": invoice.currency,
            "currencySymbol": CURRENCIES[invoice.currency].symbol,
            "invoiceDetails": [
                {
                    "invoiceLineItemType": "billing_line_items",
                    "billingProvider": "one_time",
                    "links": {
                        "self": link(
                            f"/invoices/OneTime-{invoice.id}/lineitems/OneTime/BillingLineItems"
                        )
                    },
                    "attributes": {"objectType": "InvoiceDetail"},
                }
            ],
            "documentType": "invoice",
            "invoiceType": "OneTime",
            "links": {"self": link(f"/invoices/OneTime-{invoice.id}")},
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

    def line_json(self, invoice: Invoice, position: int) -> dict[str, Any]:
        """Line ``position`` of the invoice as a v1 ``OneTimeInvoiceLineItem`` (camelCase)."""
        currency = invoice.currency
        if position < len(invoice.base_lines):
            line = invoice.base_lines[position]
            customer = self.customers[line.customer]
            sub = line.subscription
            unit = amount(line.unit_minor, currency)
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
            unit = amount(subtotal_minor, currency)
            quantity, charge = 1, "usage"
            start, end = invoice.period_start, invoice.period_end
            product, sku = sub["offerId"].split(":")[:2]
            name, credit = sub["offerName"], ""
            identity = f"{invoice.id}:{position}"
        line_tax = tax_minor(subtotal_minor, currency)
        profile = customer["companyProfile"]
        return {
            "partnerId": self.partner_tenant_id,
            "customerId": f"org:{customer['id']}",
            "customerName": profile["companyName"],
            "customerDomainName": profile["domain"],
            "customerCountry": CURRENCIES[currency].country,
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
            "subtotal": amount(subtotal_minor, currency),
            "taxTotal": amount(line_tax, currency),
            "totalForCustomer": amount(subtotal_minor + line_tax, currency),
            "currency": currency,
            "publisherName": "Microsoft Corporation",
            "publisherId": "",
            "subscriptionDescription": sub["friendlyName"],
            "subscriptionId": sub["id"],
            "subscriptionStartDate": sub["effectiveStartDate"],
            "subscriptionEndDate": sub["commitmentEndDate"],
            "chargeStartDate": iso(start),
            "chargeEndDate": iso(end),
            "termAndBillingCycle": "1 Year Subscription" if sub["termDuration"] else "Usage",
            "alternateId": hashlib.sha1(identity.encode()).hexdigest()[:12],  # noqa: S324
            "referenceId": "",
            "priceAdjustmentDescription": "",
            "pricingCurrency": "USD",
            "pcToBCExchangeRate": CURRENCIES[currency].rate,
            "pcToBCExchangeRateDate": iso(invoice.period_start),
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
        start = month_start(self.anchor, 0 if period_name == "current" else 1)
        if period_name != "current" and any(
            i.period_start == start and i.currency == currency for i in self.invoices
        ):
            return []
        period = Invoice("unbilled", currency, start, month_end(start), month_end(start))
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

    def _azure_consumption(self, currency: str, period: Invoice) -> list[dict[str, Any]]:
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
                    line = Line(
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
