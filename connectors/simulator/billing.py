"""Partner Center v1 billing as the simulator serves it: invoices (offset paging), billed
line items (seek paging, refused for periods only the v2 export serves) and unbilled lines."""

from __future__ import annotations

import re

from connectors.simulator.catalog import V2_ONLY_FROM, WITHDRAWN
from connectors.simulator.handler import Route
from connectors.simulator.paging import SeekPaged
from connectors.simulator.wire import collection

__all__ = ["ROUTES", "BillingRoutes"]

ROUTES: list[Route] = [
    ("GET", re.compile(r"^/v1/invoices$"), "invoices"),
    ("GET", re.compile(r"^/v1/invoices/unbilled/lineitems(/[^/]+/[^/]+)?$"), "unbilled"),
    (
        "GET",
        re.compile(r"^/v1/invoices/(?P<invoice>[^/]+)/lineitems(/(?P<provider>[^/]+)/[^/]+)?$"),
        "lineitems",
    ),
    ("GET", re.compile(r"^/v1/invoices/(?P<invoice>[^/]+)$"), "invoice"),
]


class BillingRoutes(SeekPaged):
    """Invoices, billed line items and unbilled line items."""

    def _invoices(self) -> None:
        self._guard("pc")
        size = int(self.query.get("size") or 200)
        offset = int(self.query.get("offset") or 0)
        newest_first = sorted(self.sim.data.invoices, key=lambda i: i.invoice_date, reverse=True)
        end = offset + self._capped(size)
        page = [self.sim.data.invoice_json(i) for i in newest_first[offset:end]]
        # Like Microsoft's invoice examples, links are relative and without /v1.
        more = None
        if end < len(newest_first):
            more = {"uri": f"/invoices?size={size}&offset={end}", "method": "GET", "headers": []}
        document = collection(page, more, f"/invoices?size={size}&offset={offset}")
        self._json(document)

    def _invoice(self, invoice: str) -> None:
        self._guard("pc")
        self._error(403, "600036", "GET /invoices/{id} requires an App+User (delegated) token")

    def _lineitems(self, invoice: str, provider: str | None = None) -> None:
        self._guard("pc")
        found = self.sim.data.invoice(invoice)
        if found is None:
            self._error(404, "10001", f"invoice {invoice} was not found")
            return
        provider = (provider or self.query.get("provider", "")).lower().replace("_", "")
        if provider not in ("onetime", "all"):
            self._json(collection([], None, f"/invoices/{invoice}/lineitems"))
            return
        if found.period_start >= V2_ONLY_FROM:
            # Since 2025-04-21 Microsoft serves these periods' new-commerce lines only
            # through the v2 export; the v1 endpoint refuses them.
            self._error(
                400,
                "400",
                "Invoice line items of billing periods from February 2024 are available "
                "only through the billed reconciliation export (Microsoft Graph v2)",
            )
            return
        size = min(2000, int(self.query.get("size") or 2000))
        base = f"/invoices/{invoice}/lineitems/onetime/billinglineitems?size={size}"
        start, end, link, token = self._seek_page(
            f"lines:{invoice}", self.sim.data.line_count(found), size, base
        )
        items = [self.sim.data.line_json(found, n) for n in range(start, end)]
        self._json(collection(items, link, base, token))

    def _unbilled(self) -> None:
        self._guard("pc")
        currency = (self.query.get("currencycode") or "USD").upper()
        period = (self.query.get("period") or "").lower()
        if period not in ("current", "previous"):
            self._error(400, "400", "period must be current or previous")
            return
        if currency in WITHDRAWN:
            self._error(400, "400", f"currencyCode {currency} is not a billing currency")
            return
        lines = self.sim.data.unbilled_lines(currency, period)
        size = min(2000, int(self.query.get("size") or 2000))
        base = (
            "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
            f"&currencycode={currency}&period={period}&size={size}"
        )
        key = f"unbilled:{currency}:{period}"
        start, end, link, token = self._seek_page(key, len(lines), size, base)
        self._json(collection(lines[start:end], link, base, token))
