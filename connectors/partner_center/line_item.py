"""A reconciliation line: the one record type, and the one general reader of a line's JSON.

``read_line`` reads any documented line shape (v1 one-time, Office, Azure,
daily-rated usage, a v2 export row) with keys in any case. It gives pcsync's
reading of the line (customer, subscription, amounts, currency, charge days)
and every documented field in its own typed value (``line_fields``); what has
no documented field — or a value its column cannot hold exactly — is kept in
``extra`` under its key as received. The v2 export's typed decoder
(``export_lines``) gives the same record for the lines it takes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from itertools import compress
from typing import Any

import msgspec

from connectors.partner_center.line_fields import BY_KEY, FIELDS, SHARED, Field, Kind
from connectors.partner_center.records import (
    _MIDNIGHT_UTC,
    Provider,
    _Fields,
    normalise_customer_id,
    parse_date,
)
from reconciliation.errors import DataError
from reconciliation.money import is_iso_currency

__all__ = ["LineItem", "canonical_json", "exact_day", "of_invoice", "read_line"]

Raw = Mapping[str, Any]
_SLOT = {f.key: n for n, f in enumerate(FIELDS)}


class LineItem(msgspec.Struct, frozen=True, gc=False):
    """One billed (or unbilled) reconciliation line.

    ``subtotal`` is the pre-tax cost to the partner, ``total_for_customer``
    the same with tax; credits are negative. ``billable_quantity`` is what was
    charged (NCE bills by it; ``quantity`` is informational); ``unit_price`` the
    effective price when Microsoft gives one. ``source`` says whether it came
    from the v1 REST API or a v2 Graph export file.

    ``fields`` holds every other documented field, typed, in the order of
    ``line_fields.FIELDS``; ``extra`` what has no documented column (or None).
    ``raw_text`` is the line's JSON — as received for v2 export lines, canonical
    otherwise — of which its content hash is taken; it takes no part in
    equality or ``repr``. A sync makes one per billed line, a million for a
    large invoice: a compact struct, never tracked by the cycle collector.
    """

    invoice_id: str
    provider: Provider
    source: str
    customer_id: str | None
    customer_name: str | None
    customer_domain: str | None
    subscription_id: str | None
    product_id: str | None
    sku_id: str | None
    product_name: str | None
    charge_type: str | None
    unit_price: Decimal | None
    quantity: Decimal | None
    billable_quantity: Decimal | None
    subtotal: Decimal
    tax_total: Decimal
    total_for_customer: Decimal
    currency: str
    charge_start_date: date | None
    charge_end_date: date | None
    credit_reason_code: str | None
    fields: tuple[Any, ...]
    extra: dict[str, Any] | None
    raw_text: str = ""

    def _compared(self) -> tuple[Any, ...]:
        return msgspec.structs.astuple(self)[:-1]  # all but raw_text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineItem):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(msgspec.structs.astuple(self)[:-3])  # fields and extra may hold lists

    def __repr__(self) -> str:
        fields = msgspec.structs.fields(self)[:-3]
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields)
        return f"LineItem({shown})"

    def field(self, key: str) -> Any:
        """A documented field of its own column (``"meterId"``), None when absent."""
        return self.fields[_SLOT[key]]

    @property
    def content_hash(self) -> str:
        """The SHA-256 of ``raw_text``: identical lines have the same."""
        return hashlib.sha256(self.raw_text.encode()).hexdigest()


def _decimal_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


# The same text as json.dumps below, written in C — for what both spell alike: dicts and
# lists of text, integers, booleans, None and Decimals (not floats, which they write
# differently), where the output is printable ASCII (json.dumps escapes the rest).
_SORTED = msgspec.json.Encoder(decimal_format="string", order="sorted").encode
_PLAIN = frozenset((str, int, bool, type(None), Decimal, dict, list))


_NESTED = frozenset((dict, list))


def _plain(values: Any) -> bool:
    kinds = set(map(type, values))
    if not kinds <= _PLAIN:
        return False
    if kinds.isdisjoint(_NESTED):
        return True
    for value in compress(values, map(_NESTED.__contains__, map(type, values))):
        if not _plain(value.values() if type(value) is dict else value):
            return False
    return True


def canonical_json(raw: Raw) -> str:
    """The record as canonical JSON: sorted keys, no spaces, decimals exactly as received."""
    if type(raw) is dict and _plain(raw.values()):
        text = _SORTED(raw)
        if text.isascii() and b"\x7f" not in text:
            return text.decode()
    return json.dumps(raw, default=_decimal_default, sort_keys=True, separators=(",", ":"))


class _Bad:
    """A value its field's column cannot hold exactly: it goes to ``extra``."""


BAD = _Bad()


def exact_day(value: Any) -> date | _Bad | None:
    """A date field's day, when the text is that day at midnight UTC (as Microsoft sends)."""
    if isinstance(value, str) and len(value) >= 10 and value[10:] in _MIDNIGHT_UTC:
        if value.startswith("0001-01-01"):
            return BAD  # Microsoft's "no date": the column says None, extra keeps the text
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return BAD
    return BAD


def typed(kind: Kind, value: Any) -> Any:
    """``value`` as its column holds it, or ``BAD``."""
    if kind is Kind.MONEY:
        if type(value) is Decimal:
            return value if value.is_finite() else BAD
        if type(value) is int:
            return Decimal(value)
        if isinstance(value, str) and value.strip() == value and value:
            try:
                number = Decimal(value)
            except ArithmeticError:
                return BAD
            return number if number.is_finite() else BAD
        return BAD
    if kind is Kind.TEXT:
        return value if isinstance(value, str) else BAD
    if kind is Kind.IDENT:  # its column is text: the database stores a number as its digits
        return value if isinstance(value, str) or type(value) is int else BAD
    if kind is Kind.DAY:
        return exact_day(value)
    if kind is Kind.BOOL:
        return value if isinstance(value, bool) else BAD
    return value if isinstance(value, list | dict) else BAD  # JSON


# Identifiers and codes pcsync reads whatever their case (a tenant id also without the
# ``org:`` Microsoft sometimes puts before it): received otherwise, they are the same value.
_SAME = {
    "customer_id": normalise_customer_id,
    "subscription_id": str.lower,
    "currency": str.upper,
}


# How the keys of one shape of line (its keys, in order) are read: per key, its slot in
# ``fields`` (-1: extra, -2: a shared field), type and shared column; then the shared fields
# the shape lacks. Lines of one listing or export share their shape: made once per shape.
_Step = tuple[str, int, Kind, str]
_PLANS: dict[tuple[str, ...], tuple[list[_Step], tuple[Field, ...]]] = {}
_SHARED_COLUMNS = frozenset(f.column for f in SHARED)


def _plan(shape: tuple[str, ...]) -> tuple[list[_Step], tuple[Field, ...]]:
    plan = _PLANS.get(shape)
    if plan is not None:
        return plan
    steps: list[_Step] = []
    met: set[str] = set()
    for key in shape:
        spec = BY_KEY.get(key.lower())
        if spec is None or spec.key in met:  # a field Microsoft added later (or one sent twice)
            steps.append((key, -1, Kind.JSON, ""))
            continue
        met.add(spec.key)
        shared = spec.column in _SHARED_COLUMNS
        steps.append((key, -2 if shared else _SLOT[spec.key], spec.kind, spec.column))
    plan = steps, tuple(spec for spec in SHARED if spec.key not in met)
    if len(_PLANS) < 1024:
        _PLANS[shape] = plan
    return plan


def _documented(raw: Raw, reading: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Every documented field's value in its slot; the rest, and what differs, for ``extra``.

    ``reading`` is pcsync's value of each shared column: a shared field whose
    received value is not exactly that reading keeps its value in ``extra``, and
    one absent where the reading has a value is marked there as None.
    """
    values: list[Any] = [None] * len(FIELDS)
    extra: dict[str, Any] = {}
    steps, lacking = _plan(tuple(raw))
    for (key, slot, kind, column), value in zip(steps, raw.values(), strict=True):
        if slot >= 0:
            if value is None:
                continue
            # The common cases first, without a call: text as text, an exact amount.
            if (kind is Kind.TEXT and type(value) is str) or (
                kind is Kind.MONEY and type(value) is Decimal and value.is_finite()
            ):
                values[slot] = value
                continue
            held = typed(kind, value)
            if held is BAD:
                extra[key] = value
            else:
                values[slot] = held
        elif slot == -1:
            extra[key] = value
        elif value is None:
            if reading[column] is not None:
                extra[key] = None
        else:
            held = typed(kind, value)
            if held is not BAD and column in _SAME:
                held = _SAME[column](held)
            if held != reading[column]:
                extra[key] = value
    for spec in lacking:
        if reading[spec.column] is not None:
            extra[spec.key] = None  # pcsync's reading came from another field
    return tuple(values), extra


def read_line(
    raw: Raw, invoice_id: str, provider: Provider, source: str, text: str | None = None
) -> LineItem:
    """Read a line of any documented shape, keys in any case; ``text`` is its JSON as received."""
    f = _Fields(raw)
    if provider is Provider.OFFICE:
        # Legacy lines carry the commerce id in subscriptionId; the Partner
        # Center subscription GUID is the syndication number.
        subscription = f.text("syndicationPartnerSubscriptionNumber", "subscriptionId")
        tax = f.money("tax", "taxTotal")
        product = f.text("offerId", "productId")
        name = f.text("offerName", "subscriptionName", "productName")
    elif provider is Provider.AZURE:
        subscription = f.text("subscriptionId")
        tax = f.money("taxAmount", "tax")
        product = f.text("serviceName", "productId")
        name = f.text("serviceName", "productName")
    else:
        subscription = f.text("subscriptionId")
        tax = f.money("taxTotal", "tax")
        product = f.text("productId")
        name = f.text("productName", "skuName")
    subtotal = f.decimal("subtotal", "pretaxCharges", "billingPreTaxTotal")
    if subtotal is None:
        # Every documented shape carries one of these; a line without it is not a zero charge.
        raise DataError(
            f"line item of invoice {invoice_id} without a subtotal"
            " (subtotal, pretaxCharges or billingPreTaxTotal)"
        )
    total = f.decimal("totalForCustomer", "total", "postTaxTotal")
    currency = f.text("currency", "billingCurrency")
    if currency is None:
        raise DataError(f"line item of invoice {invoice_id} without a currency")
    reading: dict[str, Any] = {
        "customer_id": normalise_customer_id(f.get("customerId")),
        "customer_name": f.text("customerName", "customerCompanyName"),
        "subscription_id": subscription.lower() if subscription else None,
        "product_id": product,
        "sku_id": f.text("skuId"),
        "product_name": name,
        "charge_type": f.text("chargeType"),
        "quantity": f.decimal("quantity", "consumedQuantity"),
        "billable_quantity": f.decimal("billableQuantity", "quantity"),
        "subtotal": subtotal,
        "tax_total": tax,
        "total_for_customer": total if total is not None else subtotal + tax,
        "currency": currency.upper(),
        "charge_start_date": parse_date(f.get("chargeStartDate")),
        "charge_end_date": parse_date(f.get("chargeEndDate")),
    }
    values, extra = _documented(raw, reading)
    r = reading
    return LineItem(
        f.text("invoiceNumber") or invoice_id,
        provider,
        source,
        r["customer_id"],
        r["customer_name"],
        (f.text("customerDomainName", "domainName") or "").lower() or None,
        r["subscription_id"],
        r["product_id"],
        r["sku_id"],
        r["product_name"],
        r["charge_type"],
        f.decimal("effectiveUnitPrice", "unitPrice"),
        r["quantity"],
        r["billable_quantity"],
        r["subtotal"],
        r["tax_total"],
        r["total_for_customer"],
        r["currency"],
        r["charge_start_date"],
        r["charge_end_date"],
        f.text("creditReasonCode"),
        values,
        extra or None,
        text if text is not None else canonical_json(raw),
    )


def of_invoice(item: LineItem, invoice_id: str, currency: str) -> LineItem:
    """``item`` when it is a line of invoice ``invoice_id`` billed in ``currency``; else DataError.

    Microsoft bills each invoice (and each open period's unbilled lines) in one
    billing currency, which every line carries (``currency``, or ``billingCurrency``;
    ``pricingCurrency`` may differ), and a billed line names its invoice
    (``invoiceNumber``; absent on legacy Office lines). A line in another currency,
    or of another invoice, would be added up and charged as if it were this one's.
    Unbilled lines (invoice ``unbilled``) name no invoice: only their currency counts.
    The currency is an ISO 4217 code in use or one withdrawn since (an invoice of 2022
    billed in HRK is read in HRK).
    """
    if item.currency != currency or not is_iso_currency(currency, withdrawn=True):
        where = "the unbilled lines" if invoice_id == "unbilled" else f"invoice {invoice_id}"
        if item.currency != currency:
            raise DataError(
                f"line item of {where} in {item.currency!r} instead of its currency {currency}"
            )
        raise DataError(f"line item of {where} in {currency!r}, not an ISO 4217 currency code")
    if item.invoice_id != invoice_id and invoice_id != "unbilled":
        raise DataError(
            f"line item of invoice {invoice_id} names invoice {item.invoice_id!r} (invoiceNumber)"
        )
    return item
