"""The Partner Center API as generators of typed records.

Each listing is a small declaration — first URL, paginator, record type — run
by one fetch loop (``_records``). Everything streams: an invoice with a million
lines is read page by page (v1) or line by line from its export blobs (v2).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

from connectors.partner_center.auth import TokenProvider
from connectors.partner_center.errors import RecordError
from connectors.partner_center.export_lines import export_line_items, typed_v1_line_item
from connectors.partner_center.exports import ExportRunner
from connectors.partner_center.http import HttpClient, TimeoutSession, display_url
from connectors.partner_center.line_item import LineItem, of_invoice, read_line
from connectors.partner_center.line_pages import line_page, parsed_line
from connectors.partner_center.options import ClientOptions, Credentials, Endpoints
from connectors.partner_center.paging import (
    OffsetPaginator,
    PageRequest,
    SeekPaginator,
    pages,
    with_query,
)
from connectors.partner_center.records import (
    UNREADABLE,
    Customer,
    Invoice,
    LineSource,
    Provider,
    Subscription,
    SubscriptionStatus,
)
from reconciliation.errors import DataError

__all__ = ["V2_FIRST_PERIOD", "AzureEntitlement", "PartnerCenter", "StatusChange"]

T = TypeVar("T")

log = logging.getLogger(__name__)

# New-commerce lines of billing periods from February 2024 on exist only in the v2 (Graph)
# export since 2025-04-21; earlier periods only on v1 (learn.microsoft.com, "Get invoice
# line items": Scenario A before Feb 2024 v1 only; B Feb 2024 - Mar 2025 and C later, v2).
V2_FIRST_PERIOD = date(2024, 2, 1)


@dataclass(frozen=True)
class StatusChange:
    """The outcome of setting a subscription's status: before, after, Microsoft's request id."""

    before: Subscription
    after: Subscription
    request_id: str | None
    changed: bool


@dataclass(frozen=True)
class AzureEntitlement:
    """One Azure subscription inside a customer's Azure plan (Partner Center "Azure spending")."""

    id: str
    name: str
    status: str  # active, canceled, … as Microsoft reports it


def _decoded(raw: Any, decode: Callable[[Mapping[str, Any]], T], url: str) -> T:
    try:
        raw = parsed_line(raw)  # a line of a v1 page comes as its JSON text
        if not isinstance(raw, Mapping):
            raise DataError(f"an item that is not a JSON object: {type(raw).__name__}")
        return decode(raw)
    except UNREADABLE as exc:
        raise RecordError(
            str(exc), payload=json.dumps(raw, default=str), source=url.split("?", 1)[0]
        ) from exc


def _expect_collection(body: Any) -> None:
    if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
        raise ValueError("collection without an items array")


class PartnerCenter:
    """Read customers, subscriptions, invoices and line items; suspend and reactivate."""

    def __init__(
        self,
        http: HttpClient,
        endpoints: Endpoints,
        options: ClientOptions,
        exports: ExportRunner | None = None,
    ) -> None:
        self.http = http
        self._endpoints = endpoints
        self._options = options
        self._api = endpoints.api_base_url.rstrip("/")
        self._scope = endpoints.partner_center_scope
        self.exports = exports or ExportRunner(
            http,
            endpoints.graph_base_url,
            endpoints.graph_scope,
            deadline_seconds=options.export_deadline_seconds,
        )

    @classmethod
    def connect(
        cls,
        credentials: Credentials,
        endpoints: Endpoints,
        options: ClientOptions,
        *,
        correlation_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PartnerCenter:
        """Build the session, the MSAL client and the HTTP client for one process.

        ``sleep`` is how waits happen (backoff, Retry-After, export polling); the
        daemon passes one that wakes up early on shutdown.
        """
        session = TimeoutSession(options.timeout_seconds)
        tokens = TokenProvider(
            credentials,
            endpoints,
            session=session,
            cache_path=options.token_cache_path,
            timeout_seconds=options.timeout_seconds,
        )
        http = HttpClient(
            session,
            tokens,
            options,
            correlation_id=correlation_id,
            user_agent=options.application_name,
            sleep=sleep,
        )
        exports = ExportRunner(
            http,
            endpoints.graph_base_url,
            endpoints.graph_scope,
            deadline_seconds=options.export_deadline_seconds,
            sleep=sleep,
        )
        return cls(http, endpoints, options, exports)

    # -- the fetch loop -------------------------------------------------------------

    def _records(
        self,
        first: PageRequest,
        paginator: SeekPaginator | OffsetPaginator,
        family: str,
        decode: Callable[[Mapping[str, Any]], T],
        on_bad: Callable[[RecordError], None] | None = None,
        *,
        ahead: bool = False,
        parse: Callable[[bytes, str], Any] | None = None,
    ) -> Iterator[T]:
        """Every item of every page, decoded. An unreadable one is a RecordError, raised
        or, with ``on_bad``, handed to it and passed over. ``ahead``: see ``paging.pages``."""

        def fetch(request: PageRequest) -> Mapping[str, Any]:
            reply = self.http.get_json(
                request.url,
                scope=self._scope,
                family=family,
                headers=request.headers,
                expect=_expect_collection,
                parse=parse,
            )
            body: Mapping[str, Any] = reply.body
            return body

        for request, body in pages(fetch, first, paginator, ahead=ahead):
            for raw in paginator.items(body):
                try:
                    record = _decoded(raw, decode, request.url)
                except RecordError as exc:
                    if on_bad is None:
                        raise
                    on_bad(exc)
                    continue
                yield record

    # -- a preflight's reads ----------------------------------------------------------------

    def sign_in(self, *, graph: bool) -> None:
        """Tokens for Partner Center (and Microsoft Graph) now, or AuthenticationError."""
        self.http.sign_in(self._scope)
        if graph:
            self.http.sign_in(self.exports.scope)

    def first_customer(self) -> tuple[str | None, str]:
        """(the first customer's id or None, the server's ``Date`` header): a one-item read."""
        url = f"{self._api}/v1/customers?size=1"
        reply = self.http.get_json(
            url, scope=self._scope, family="customers", expect=_expect_collection
        )
        items = reply.body["items"]
        first = items[0].get("id") if items and isinstance(items[0], Mapping) else None
        return (str(first) if first else None), reply.headers.get("Date", "")

    def first_invoice_page(self) -> str:
        """Read one invoice; returns the server's ``Date`` header."""
        url = f"{self._api}/v1/invoices?size=1&offset=0"
        reply = self.http.get_json(
            url, scope=self._scope, family="invoices", expect=_expect_collection
        )
        return str(reply.headers.get("Date", ""))

    # -- customers and subscriptions ------------------------------------------------------

    def customers(self, on_bad: Callable[[RecordError], None] | None = None) -> Iterator[Customer]:
        """Every customer of the partner (seek paging); unreadable ones go to ``on_bad``."""
        first = PageRequest(f"{self._api}/v1/customers?size={min(self._options.page_size, 500)}")
        paginator = SeekPaginator(self._api)
        yield from self._records(first, paginator, "customers", Customer.from_api, on_bad)

    def billing_email(self, customer_id: str) -> str | None:
        """The customer's billing contact address (its billing profile), if it has one."""
        reply = self.http.get_json(
            f"{self._api}/v1/customers/{quote(customer_id)}", scope=self._scope, family="customers"
        )
        profile = reply.body.get("billingProfile") if isinstance(reply.body, Mapping) else None
        email = profile.get("email") if isinstance(profile, Mapping) else None
        return email if isinstance(email, str) and "@" in email else None

    def subscriptions(self, customer_id: str) -> Iterator[Subscription]:
        """Every subscription of one customer (one unpaged collection)."""
        url = f"{self._api}/v1/customers/{quote(customer_id)}/subscriptions"
        reply = self.http.get_json(
            url, scope=self._scope, family="subscriptions", expect=_expect_collection
        )
        for raw in reply.body["items"]:
            yield _decoded(raw, lambda r: Subscription.from_api(r, customer_id), url)

    def subscription(self, customer_id: str, subscription_id: str) -> Subscription:
        """One subscription, with its current etag."""
        url = (
            f"{self._api}/v1/customers/{quote(customer_id)}/subscriptions/{quote(subscription_id)}"
        )
        reply = self.http.get_json(url, scope=self._scope, family="subscriptions")
        return Subscription.from_api(reply.body, customer_id)

    def set_status(
        self, customer_id: str, subscription_id: str, status: SubscriptionStatus
    ) -> StatusChange:
        """Suspend or reactivate: GET the full object, PATCH it back with the new status.

        Already in the target state: nothing is sent. Sends ``If-Match`` with the
        etag, so a concurrent change fails (ConflictError) instead of being
        overwritten; Microsoft's refusals surface as ApiError with its code.
        """
        before = self.subscription(customer_id, subscription_id)
        if before.status is status:
            return StatusChange(before, before, None, changed=False)
        return self._patch(before, {"status": status.value})

    def set_auto_renew(self, customer_id: str, subscription_id: str, enabled: bool) -> StatusChange:
        """Turn a new-commerce subscription's auto-renew on or off (PATCH ``autoRenewEnabled``).

        As learn.microsoft.com "Update autorenew for a commercial marketplace subscription
        or new commerce subscriptions" documents: GET the subscription, set
        ``autoRenewEnabled``, PATCH it back (with ``If-Match``). Already so: nothing is sent.
        """
        before = self.subscription(customer_id, subscription_id)
        if before.auto_renew is enabled:
            return StatusChange(before, before, None, changed=False)
        return self._patch(before, {"autoRenewEnabled": enabled})

    def _patch(self, before: Subscription, changes: Mapping[str, Any]) -> StatusChange:
        """PATCH the full subscription back with ``changes``, under its etag (``If-Match``):
        a change made meanwhile by someone else fails (ConflictError), never overwritten."""
        body = {**before.raw, **changes}
        headers = {"If-Match": before.etag} if before.etag else {}
        url = (
            f"{self._api}/v1/customers/{quote(before.customer_id)}/subscriptions/{quote(before.id)}"
        )
        reply = self.http.send_json(
            "PATCH", url, body, scope=self._scope, family="subscriptions", headers=headers
        )
        after = Subscription.from_api(reply.body, before.customer_id)
        return StatusChange(before, after, reply.request_id, changed=True)

    def azure_entitlements(self, customer_id: str, subscription_id: str) -> list[AzureEntitlement]:
        """The Azure subscriptions in an Azure plan (GET ``…/azureEntitlements``; read only)."""
        url = (
            f"{self._api}/v1/customers/{quote(customer_id)}/subscriptions/"
            f"{quote(subscription_id)}/azureEntitlements"
        )
        reply = self.http.get_json(
            url, scope=self._scope, family="subscriptions", expect=_expect_collection
        )
        found = []
        for raw in reply.body["items"]:
            if not isinstance(raw, Mapping) or not raw.get("id"):
                raise DataError(f"an Azure entitlement without an id from {display_url(url)}")
            found.append(
                AzureEntitlement(
                    str(raw["id"]).lower(),
                    str(raw.get("friendlyName") or raw["id"]),
                    str(raw.get("status") or "unknown").lower(),
                )
            )
        return found

    # -- invoices and line items --------------------------------------------------------

    def invoices(self, on_bad: Callable[[RecordError], None] | None = None) -> Iterator[Invoice]:
        """Every invoice of the partner, each with its amendments (offset paging);
        unreadable ones go to ``on_bad``."""
        paginator = OffsetPaginator(min(self._options.page_size, 200))
        first = paginator.first(f"{self._api}/v1/invoices")
        yield from self._records(first, paginator, "invoices", Invoice.from_api, on_bad)

    def invoice(self, invoice_id: str) -> Invoice:
        """One invoice by id. Microsoft allows this to app+user credentials only; with
        app-only credentials it answers 403 (ApiError) — the list has every field needed."""
        reply = self.http.get_json(
            f"{self._api}/v1/invoices/{quote(invoice_id)}", scope=self._scope, family="invoices"
        )
        return Invoice.from_api(reply.body)

    def line_item_source(self, invoice: Invoice, provider: Provider) -> LineSource:
        """The API this invoice's lines of ``provider`` come from."""
        if provider is not Provider.ONE_TIME:
            return LineSource.V1  # legacy providers never moved to the exports
        choice = self._options.line_items_api
        if choice in (LineSource.V1, LineSource.V2):
            return LineSource(choice)
        period = invoice.billing_period_start or invoice.invoice_date
        if self._endpoints.v2_billing_exports and period >= V2_FIRST_PERIOD:
            return LineSource.V2
        return LineSource.V1

    def line_items(self, invoice: Invoice) -> Iterator[LineItem]:
        """Every billed reconciliation line of an invoice, from v1 or v2 as appropriate."""
        for provider in invoice.providers or (Provider.ONE_TIME,):
            yield from self.lines_of(invoice, provider)

    def lines_of(
        self, invoice: Invoice, provider: Provider, operation: str | None = None
    ) -> Iterator[LineItem]:
        """An invoice's (or amendment's) billed lines of one provider, from the API Microsoft
        serves them on (checked ``of_invoice``); ``operation`` resumes a v2 export requested."""
        if self.line_item_source(invoice, provider) is LineSource.V2:
            return self.v2_line_items(invoice.id, operation, currency=invoice.currency)
        return self.v1_line_items(invoice.id, provider, currency=invoice.currency)

    def v1_line_items(
        self, invoice_id: str, provider: Provider, *, currency: str
    ) -> Iterator[LineItem]:
        """Billed lines from the v1 API (seek paging for onetime, offset for legacy) of an
        invoice billed in ``currency``."""
        currency = currency.upper()
        base = f"{self._api}/v1/invoices/{quote(invoice_id)}/lineitems"
        params = {"provider": provider.query_value, "invoicelineitemtype": "billinglineitems"}
        size = min(self._options.page_size, 2000)
        paginator: SeekPaginator | OffsetPaginator
        if provider in (Provider.ONE_TIME, Provider.MARKETPLACE):
            paginator = SeekPaginator(self._api)
            first = PageRequest(with_query(base, {**params, "size": size}))
        else:
            paginator = OffsetPaginator(size)
            first = paginator.first(with_query(base, params))
        yield from self._records(
            first,
            paginator,
            "lineitems",
            lambda raw: of_invoice(
                typed_v1_line_item(raw, invoice_id, provider)
                or read_line(raw, invoice_id, provider, LineSource.V1),
                invoice_id,
                currency,
            ),
            ahead=True,  # the lines' consumer stores them, it asks Microsoft nothing meanwhile
            parse=line_page,
        )

    def v2_line_items(
        self, invoice_id: str, operation: str | None = None, *, currency: str
    ) -> Iterator[LineItem]:
        """Billed lines from a v2 export of an invoice billed in ``currency``: request (unless
        ``operation`` was), wait, stream blobs.

        Requesting every pending invoice's export first and reading them after
        lets Microsoft prepare them in parallel.
        """
        manifest = self.exports.wait(operation or self.exports.request_billed(invoice_id))
        for blob in manifest.blobs:
            lines = self.exports.lines(manifest, blob)
            # Where a bad line came from, without the SAS token that reads the blob.
            where = display_url(manifest.blob_url(blob))
            yield from export_line_items(lines, invoice_id, where, currency=currency)

    def usage_line_items(self, invoice_id: str, currency: str) -> Iterator[LineItem]:
        """Billed daily-rated usage of an invoice (v1, seek paging; ``unbilled`` for the open
        period). Each line is one meter on one day; amounts are ``billingPreTaxTotal``."""
        expected = currency.upper()
        url = with_query(
            f"{self._api}/v1/invoices/{quote(invoice_id)}/lineitems",
            {
                "provider": "onetime",
                "invoicelineitemtype": "usagelineitems",
                "currencycode": currency,
                "period": "current" if invoice_id == "unbilled" else "previous",
                "size": min(self._options.page_size, 2000),
            },
        )
        yield from self._records(
            PageRequest(url),
            SeekPaginator(self._api),
            "lineitems",
            lambda raw: of_invoice(
                read_line(raw, invoice_id, Provider.ONE_TIME, LineSource.V1), invoice_id, expected
            ),
        )

    def unbilled_line_items(self, currency: str, period: str = "current") -> Iterator[LineItem]:
        """Lines not yet invoiced (v1 unbilled reconciliation, seek paging): ``current`` is
        this calendar month's, ``previous`` last month's until its invoice is issued."""
        expected = currency.upper()
        url = with_query(
            f"{self._api}/v1/invoices/unbilled/lineitems",
            {
                "provider": "onetime",
                "invoicelineitemtype": "billinglineitems",
                "currencycode": currency,
                "period": period,
                "size": min(self._options.page_size, 2000),
            },
        )
        yield from self._records(
            PageRequest(url),
            SeekPaginator(self._api),
            "lineitems",
            lambda raw: of_invoice(
                read_line(raw, "unbilled", Provider.ONE_TIME, LineSource.V1), "unbilled", expected
            ),
        )
