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

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from connectors.partner_center.http import parse_json_line
from connectors.partner_center.records import (
    UNREADABLE,
    ZERO,
    LineItem,
    LineSource,
    Provider,
    is_export_shape,
    normalise_customer_id,
)
from reconciliation.errors import BadResponseError, RecordError

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
    # Microsoft's line dates are date-times (with or without Z or an offset): read in C.
    charge_start_date: datetime | None = None
    charge_end_date: datetime | None = None
    credit_reason_code: str | None = None


_DECODER = msgspec.json.Decoder(_ExportLine)


class LazyJson(msgspec.Struct, gc=False):
    """A line's whole JSON object, parsed only if someone asks for a key (a ``Mapping``).

    One is made per billed line, so it is a C struct (no ``__init__`` in Python,
    unseen by the cycle collector) rather than a ``Mapping`` subclass.
    """

    text: str
    parsed: Mapping[str, Any] | None = None

    def _value(self) -> Mapping[str, Any]:
        if self.parsed is None:
            self.parsed = parse_json_line(self.text, "export line")
        return self.parsed

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __contains__(self, key: object) -> bool:
        return key in self._value()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        return self._value().get(key, default)

    def keys(self) -> KeysView[str]:
        """The line's keys."""
        return self._value().keys()

    def items(self) -> ItemsView[str, Any]:
        """The line's keys and values."""
        return self._value().items()

    def values(self) -> ValuesView[Any]:
        """The line's values."""
        return self._value().values()


Mapping.register(LazyJson)


def _day(value: datetime | None) -> date | None:
    """The UTC calendar date, as ``parse_date`` gives it (year 1 is Microsoft's "no date")."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is not UTC and zone is not None:  # msgspec reads "Z" and "+00:00" as UTC itself
        value = value.astimezone(UTC)
    return None if value.year == 1 else value.date()


def typed_line_item(line: bytes, text: str, invoice_id: str) -> LineItem | None:
    """The line read by the typed decoder, or None when the general reader must read it.

    Only for lines of a blob whose schema is the documented one (see ``is_export_shape``).
    This runs once per billed line, so it is written flat: one decode, one record
    built positionally, in ``LineItem``'s field order.
    """
    try:
        row = _DECODER.decode(line)
    except msgspec.ValidationError:
        return None  # e.g. an amount as "" — the general reader knows what that means
    except msgspec.DecodeError:
        return None  # not JSON: the general reader reports it
    currency = row.currency
    if not currency:
        return None
    price = row.effective_unit_price if row.effective_unit_price is not None else row.unit_price
    quantity = row.quantity
    billable = row.billable_quantity if row.billable_quantity is not None else quantity
    for amount in (row.subtotal, row.tax_total, row.total_for_customer, price, quantity, billable):
        # msgspec reads "NaN" and "Infinity" as amounts; the general reader refuses them.
        if amount is not None and not amount.is_finite():
            return None
    subtotal = row.subtotal if row.subtotal is not None else ZERO
    tax = row.tax_total if row.tax_total is not None else ZERO
    total = row.total_for_customer if row.total_for_customer is not None else subtotal + tax
    subscription = row.subscription_id
    return LineItem(
        row.invoice_number or invoice_id,
        Provider.ONE_TIME,
        LineSource.V2,
        normalise_customer_id(row.customer_id),
        row.customer_name or None,
        (row.customer_domain_name or "").lower() or None,
        subscription.lower() if subscription else None,
        row.product_id or None,
        row.sku_id or None,
        row.product_name or row.sku_name or None,
        row.charge_type or None,
        price,
        quantity,
        billable,
        subtotal,
        tax,
        total,
        currency.upper(),
        _day(row.charge_start_date),
        _day(row.charge_end_date),
        row.credit_reason_code or None,
        LazyJson(text),  # type: ignore[arg-type]  # a Mapping by registration
        text,
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
        try:
            item = LineItem.from_export_row(raw, invoice_id, text)
        except UNREADABLE as exc:
            raise RecordError(f"{where}: line {number}: {exc}", payload=text, source=where) from exc
        yield item
