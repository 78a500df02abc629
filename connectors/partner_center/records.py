"""Typed records the connector yields: customers, subscriptions, invoices (lines: ``line_item``).

Each ``from_api`` reads Microsoft's JSON liberally — keys in any case (v1 is
camelCase, v2 export files are PascalCase, some legacy fields differ again),
dates with or without ``Z`` or an offset, enum spellings like ``one_time`` or
``OneTime`` — and produces one strict shape. Amounts arrive as ``Decimal``
because every JSON document is parsed with ``parse_float=Decimal``; nothing
here ever goes through a float. ``raw`` keeps the record as received.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from reconciliation.errors import DataError
from reconciliation.money import D

ZERO = Decimal(0)

__all__ = [
    "UNREADABLE",
    "Customer",
    "Invoice",
    "Provider",
    "Subscription",
    "SubscriptionStatus",
    "normalise_customer_id",
    "parse_date",
    "parse_datetime",
]

Raw = Mapping[str, Any]

# What decoding a record raises when a field is missing, of the wrong type or an impossible
# number: the record is unreadable (a RecordError), whichever it was.
UNREADABLE = (DataError, ValueError, TypeError, ArithmeticError)


class SubscriptionStatus(enum.StrEnum):
    """Partner Center's subscription states (SDK ``SubscriptionStatus``)."""

    NONE = "none"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    EXPIRED = "expired"
    PENDING = "pending"
    DISABLED = "disabled"

    @classmethod
    def parse(cls, value: object) -> SubscriptionStatus:
        """Read a status in any case; unknown values are a DataError naming them."""
        try:
            return cls(str(value).strip().lower())
        except ValueError as exc:
            raise DataError(f"unknown subscription status {value!r}") from exc


class LineSource(enum.StrEnum):
    """Which API a billed line came from: the v1 line-item endpoints or the v2 Graph export."""

    V1 = "v1"
    V2 = "v2"


class Provider(enum.StrEnum):
    """Billing providers of invoice line items (SDK ``BillingProvider``, wire spelling)."""

    ONE_TIME = "one_time"
    OFFICE = "office"
    AZURE = "azure"
    MARKETPLACE = "marketplace"

    @classmethod
    def parse(cls, value: object) -> Provider:
        """Accept ``one_time``, ``OneTime``, ``onetime`` alike."""
        text = str(value).strip().lower().replace("_", "")
        for provider in cls:
            if provider.value.replace("_", "") == text:
                return provider
        raise DataError(f"unknown billing provider {value!r}")

    @property
    def query_value(self) -> str:
        """The spelling the v1 ``provider=`` query parameter uses."""
        return self.value.replace("_", "")


# Rows of one listing or export share their keys: the lower-case index of a key set is
# built once, not per row (a million-line export would otherwise lower-case 50 million keys).
_KEY_INDEXES: dict[tuple[str, ...], dict[str, str]] = {}
_LOWER_NAMES: dict[str, str] = {}


class _Fields:
    """Case-insensitive access to one JSON object."""

    __slots__ = ("_index", "_raw")

    def __init__(self, raw: Raw) -> None:
        self._raw = raw
        shape = tuple(raw)
        index = _KEY_INDEXES.get(shape)
        if index is None:
            index = {key.lower(): key for key in shape}
            if len(_KEY_INDEXES) < 1024:
                _KEY_INDEXES[shape] = index
        self._index = index

    def get(self, *names: str) -> Any:
        for name in names:
            lower = _LOWER_NAMES.get(name)
            if lower is None:
                lower = _LOWER_NAMES.setdefault(name, name.lower())
            key = self._index.get(lower)
            if key is None:
                continue
            value = self._raw[key]
            if value is not None and value != "":
                return value
        return None

    def text(self, *names: str) -> str | None:
        value = self.get(*names)
        return None if value is None else str(value)

    def required(self, *names: str) -> Any:
        value = self.get(*names)
        if value is None:
            raise DataError(f"missing field {names[0]!r}")
        return value

    def decimal(self, *names: str) -> Decimal | None:
        value = self.get(*names)
        if value is None or type(value) is Decimal:
            return value
        if isinstance(value, float):  # pragma: no cover - parse_float=Decimal prevents it
            raise DataError(f"field {names[0]!r} was parsed as a float; parse with Decimal")
        return D(value) if isinstance(value, str | int | Decimal) else D(str(value))

    def money(self, *names: str) -> Decimal:
        value = self.decimal(*names)
        return value if value is not None else Decimal(0)


def parse_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from Microsoft's date strings (``Z``, offset, or none = UTC)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.startswith("0001-01-01"):  # Microsoft's "no date"
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 parses at most 6 fractional digits; Microsoft sends 7.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        rest = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DataError(f"not an ISO 8601 date: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_MIDNIGHT_UTC = ("", "T00:00:00Z", "T00:00:00", "T00:00:00+00:00", "T00:00:00.0000000Z")


def parse_date(value: object) -> date | None:
    """The UTC calendar date of a Microsoft date string."""
    # The common case, a plain date or midnight UTC, without the general parser.
    if (
        isinstance(value, str)
        and len(value) >= 10
        and value[10:] in _MIDNIGHT_UTC
        and not value.startswith("0001-01-01")
    ):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass  # the general parser names the problem
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def normalise_customer_id(value: object) -> str | None:
    """Customer tenant id without the ``org:`` prefix, lower-cased."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lower().startswith("org:"):
        text = text[4:]
    return text.lower()


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer tenant of the partner.

    ``id`` is the customer's Entra tenant id; ``domain`` its primary
    (``*.onmicrosoft.com``) domain; ``name`` the company name.
    """

    id: str
    name: str
    domain: str | None
    relationship: str | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, raw: Raw) -> Customer:
        """Build from a ``GET /v1/customers`` item."""
        fields = _Fields(raw)
        profile = _Fields(fields.get("companyProfile") or {})
        customer_id = normalise_customer_id(fields.get("id") or profile.get("tenantId"))
        if customer_id is None:
            raise DataError("customer without an id")
        return cls(
            id=customer_id,
            name=profile.text("companyName") or customer_id,
            domain=(profile.text("domain") or "").lower() or None,
            relationship=fields.text("relationshipToPartner"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class Subscription:
    """A customer's subscription as Partner Center reports it.

    ``billing_type`` is ``license`` (seats billed whether used or not) or
    ``usage`` (e.g. an Azure plan); ``etag`` is what an update must send in
    ``If-Match``.
    """

    id: str
    customer_id: str
    offer_id: str | None
    offer_name: str | None
    friendly_name: str | None
    product_type: str | None
    quantity: int
    unit_type: str | None
    billing_type: str | None
    billing_cycle: str | None
    term_duration: str | None
    status: SubscriptionStatus
    suspension_reasons: tuple[str, ...]
    auto_renew: bool | None
    effective_start_date: datetime | None
    commitment_end_date: datetime | None
    etag: str | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, raw: Raw, customer_id: str) -> Subscription:
        """Build from a ``GET /v1/customers/{id}/subscriptions`` item."""
        fields = _Fields(raw)
        product_type = fields.get("productType")
        attributes = _Fields(fields.get("attributes") or {})
        quantity = fields.get("quantity")
        return cls(
            id=str(fields.required("id")).lower(),
            customer_id=customer_id,
            offer_id=fields.text("offerId"),
            offer_name=fields.text("offerName"),
            friendly_name=fields.text("friendlyName"),
            product_type=(
                _Fields(product_type).text("id")
                if isinstance(product_type, Mapping)
                else fields.text("productType")
            ),
            quantity=int(quantity) if quantity is not None else 0,
            unit_type=fields.text("unitType"),
            billing_type=(fields.text("billingType") or "").lower() or None,
            billing_cycle=(fields.text("billingCycle") or "").lower() or None,
            term_duration=fields.text("termDuration"),
            status=SubscriptionStatus.parse(fields.required("status")),
            suspension_reasons=tuple(str(r) for r in fields.get("suspensionReasons") or ()),
            auto_renew=fields.get("autoRenewEnabled"),
            effective_start_date=parse_datetime(fields.get("effectiveStartDate")),
            commitment_end_date=parse_datetime(fields.get("commitmentEndDate")),
            etag=attributes.text("etag"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class Invoice:
    """A Microsoft invoice to the partner, as listed by ``GET /v1/invoices``.

    ``total_charges`` is charges plus adjustments; ``paid_amount`` is what the
    partner has paid against it (Microsoft reports payments as negative; this
    record stores the amount paid as a positive number). ``providers`` lists the
    billing providers with line items on the invoice.

    ``amendments`` are the credit notes and adjustment notes Microsoft issued
    against it, nested in the listed invoice: each is a document of its own, with
    its own id, date, total and line items (``amends`` names the invoice it amends).
    """

    id: str
    invoice_date: date
    billing_period_start: date | None
    billing_period_end: date | None
    total_charges: Decimal
    paid_amount: Decimal
    currency: str
    invoice_type: str | None
    document_type: str | None
    providers: tuple[Provider, ...]
    raw: Raw = field(repr=False, compare=False)
    amends: str | None = None
    amendments: tuple[Invoice, ...] = ()

    @property
    def documents(self) -> tuple[Invoice, ...]:
        """The invoice and its amendments: every document with lines of its own."""
        return (self, *self.amendments)

    @classmethod
    def from_api(cls, raw: Raw, parent: Invoice | None = None) -> Invoice:
        """Build from a ``GET /v1/invoices`` item (or, with its ``parent``, one of its
        ``amendments``: an amendment without a billing period has its invoice's)."""
        fields = _Fields(raw)
        invoice_id = str(fields.required("id"))
        invoice_date = parse_date(fields.required("invoiceDate"))
        if invoice_date is None:  # Microsoft's "no date", 0001-01-01
            raise DataError(f"invoice {invoice_id} without an invoice date")
        total = fields.decimal("totalCharges")
        if total is None:  # a bill without its total is not a bill of zero
            raise DataError(f"invoice {invoice_id} without totalCharges")
        providers: list[Provider] = []
        for detail in fields.get("invoiceDetails") or ():
            detail_fields = _Fields(detail)
            kind = (detail_fields.text("invoiceLineItemType") or "").lower().replace("_", "")
            provider_text = detail_fields.get("billingProvider")
            if kind == "billinglineitems" and provider_text:
                provider = Provider.parse(provider_text)
                if provider not in providers:
                    providers.append(provider)
        period_start = parse_date(fields.get("billingPeriodStartDate"))
        period_end = parse_date(fields.get("billingPeriodEndDate"))
        if parent is not None and period_start is None:
            period_start, period_end = parent.billing_period_start, parent.billing_period_end
        invoice = cls(
            id=invoice_id,
            invoice_date=invoice_date,
            billing_period_start=period_start,
            billing_period_end=period_end,
            total_charges=total,
            paid_amount=abs(fields.money("paidAmount")),
            currency=str(fields.required("currencyCode")).upper(),
            invoice_type=fields.text("invoiceType"),
            document_type=fields.text("documentType"),
            providers=tuple(providers),
            # The nested amendments are stored as documents of their own, not inside this one.
            raw={k: v for k, v in raw.items() if k.lower() != "amendments"},
            amends=parent.id if parent is not None else (fields.text("amendsOf") or None),
        )
        nested = fields.get("amendments") or []
        if not isinstance(nested, list) or not all(isinstance(a, Mapping) for a in nested):
            raise DataError(f"invoice {invoice_id}: amendments that are not a list of objects")
        if not nested:
            return invoice
        return replace(invoice, amendments=tuple(cls.from_api(a, invoice) for a in nested))
