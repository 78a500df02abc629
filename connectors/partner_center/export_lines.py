"""Billed lines from the JSON lines of a v2 export blob, read at the speed of the download.

A million-line invoice spends most of a sync turning JSON text into records.
Export blobs have one documented schema (PascalCase keys, the same for every
line), so after checking the first line of a blob against it, the lines are
decoded straight into the fields a billed line needs (msgspec, amounts as exact
Decimals) instead of into a dict of every key. Any line the typed decoder does
not take — a key spelled otherwise, an amount written as an empty string, a
line without a currency — is read by the general, case-insensitive reader, and
both give the same ``LineItem`` (property-tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from connectors.partner_center.http import parse_json_line
from connectors.partner_center.records import (
    LineItem,
    Provider,
    is_export_shape,
    normalise_customer_id,
    parse_date,
)
from reconciliation.errors import BadResponseError

__all__ = ["LazyJson", "export_line_items", "typed_line_item"]


class _ExportLine(msgspec.Struct, rename="pascal"):
    """The fields of a billed line, as the v2 export spells them (unknown keys ignored)."""

    currency: str | None = None
    subtotal: Decimal | None = None
    tax_total: Decimal | None = None
    total_for_customer: Decimal | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    customer_domain_name: str | None = None
    subscription_id: str | None = None
    invoice_number: str | None = None
    product_id: str | None = None
    sku_id: str | None = None
    product_name: str | None = None
    sku_name: str | None = None
    charge_type: str | None = None
    effective_unit_price: Decimal | None = None
    unit_price: Decimal | None = None
    quantity: Decimal | None = None
    billable_quantity: Decimal | None = None
    charge_start_date: str | None = None
    charge_end_date: str | None = None
    credit_reason_code: str | None = None


_DECODER = msgspec.json.Decoder(_ExportLine)


class LazyJson(Mapping[str, Any]):
    """A line's whole JSON object, parsed only if someone asks for a key."""

    __slots__ = ("_text", "_value")

    def __init__(self, text: str) -> None:
        self._text = text
        self._value: Mapping[str, Any] | None = None

    def _parsed(self) -> Mapping[str, Any]:
        if self._value is None:
            self._value = parse_json_line(self._text, "export line")
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


def _text(value: str | None) -> str | None:
    return value or None


_AMOUNTS = (
    "subtotal",
    "tax_total",
    "total_for_customer",
    "effective_unit_price",
    "unit_price",
    "quantity",
    "billable_quantity",
)


def _finite(row: _ExportLine) -> bool:
    # msgspec reads "NaN" and "Infinity" as amounts; the general reader refuses them.
    return all(
        value is None or value.is_finite() for value in (getattr(row, name) for name in _AMOUNTS)
    )


def _first(first: Decimal | None, then: Decimal | None) -> Decimal | None:
    return first if first is not None else then


def typed_line_item(line: bytes, text: str, invoice_id: str) -> LineItem | None:
    """The line read by the typed decoder, or None when the general reader must read it.

    Only for lines of a blob whose schema is the documented one (see ``is_export_shape``).
    """
    try:
        row = _DECODER.decode(line)
    except msgspec.ValidationError:
        return None  # e.g. an amount as "" — the general reader knows what that means
    except msgspec.DecodeError:
        return None  # not JSON: the general reader reports it
    if not row.currency or not _finite(row):
        return None
    subtotal = row.subtotal if row.subtotal is not None else Decimal(0)
    tax = row.tax_total if row.tax_total is not None else Decimal(0)
    subscription = row.subscription_id or None
    return LineItem(
        invoice_id=row.invoice_number or invoice_id,
        provider=Provider.ONE_TIME,
        source="v2",
        customer_id=normalise_customer_id(row.customer_id),
        customer_name=_text(row.customer_name),
        customer_domain=(row.customer_domain_name or "").lower() or None,
        subscription_id=subscription.lower() if subscription else None,
        product_id=_text(row.product_id),
        sku_id=_text(row.sku_id),
        product_name=_text(row.product_name) or _text(row.sku_name),
        charge_type=_text(row.charge_type),
        unit_price=_first(row.effective_unit_price, row.unit_price),
        quantity=row.quantity,
        billable_quantity=_first(row.billable_quantity, row.quantity),
        subtotal=subtotal,
        tax_total=tax,
        total_for_customer=(
            row.total_for_customer if row.total_for_customer is not None else subtotal + tax
        ),
        currency=row.currency.upper(),
        charge_start_date=parse_date(row.charge_start_date),
        charge_end_date=parse_date(row.charge_end_date),
        credit_reason_code=_text(row.credit_reason_code),
        raw=LazyJson(text),
        raw_text=text,
    )


def export_line_items(lines: Iterable[bytes], invoice_id: str, where: str) -> Iterator[LineItem]:
    """The billed lines of one export blob, in order."""
    typed: bool | None = None  # decided on the blob's first line
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            raise BadResponseError(f"{where}: line {number} is not UTF-8") from exc
        if typed:
            item = typed_line_item(line, text, invoice_id)
            if item is not None:
                yield item
                continue
        raw = parse_json_line(text, f"{where}: line {number}")
        if typed is None:
            typed = is_export_shape(raw)
        yield LineItem.from_export_row(raw, invoice_id, text)
