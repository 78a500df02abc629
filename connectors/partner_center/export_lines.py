"""Billed lines from the JSON lines of a v2 export blob, read at the speed of the download.

A million-line invoice spends most of a sync turning JSON text into records.
Export blobs have one documented schema (PascalCase keys), so each line is
decoded straight into its documented fields (msgspec, amounts as exact Decimals)
instead of into a dict of every key. Any line the typed decoder does not take —
a key spelled otherwise or not documented, an amount written as an empty
string, a line without a currency — is read by the general, case-insensitive
reader (``line_item.read_line``), and both give the same ``LineItem``
(property-tested).
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from decimal import Decimal
from functools import partial
from operator import is_not, itemgetter
from typing import Any

import msgspec

from connectors.partner_center.errors import BadResponseError, RecordError
from connectors.partner_center.http import parse_json_line
from connectors.partner_center.line_fields import BY_KEY, FIELDS, SHARED, Kind
from connectors.partner_center.line_item import (
    BAD,
    LineItem,
    canonical_json,
    exact_day,
    of_invoice,
    read_line,
)
from connectors.partner_center.records import (
    UNREADABLE,
    LineSource,
    Provider,
    normalise_customer_id,
)
from reconciliation.money import is_iso_currency

__all__ = ["LazyJson", "export_line_items", "picker", "typed_line_item", "typed_v1_line_item"]


def _pascal(key: str) -> str:
    """A documented key as the export spells it (``pcToBCExchangeRate``: ``PCToBC…``)."""
    return "PC" + key[2:] if key.startswith("pcTo") else key[:1].upper() + key[1:]


_TYPES: dict[Kind, Any] = {
    Kind.TEXT: str | None,
    Kind.IDENT: str | int | None,
    Kind.MONEY: Decimal | None,
    Kind.DAY: str | None,  # checked to be a day at midnight, as the general reader does
    Kind.BOOL: bool | None,
    Kind.JSON: list[Any] | dict[str, Any] | None,
}
# Every documented field (shared first, then ``FIELDS`` in order), as the export spells it;
# a key it does not know (a field added later, a key in another case) sends the line to the
# general reader, which keeps it in ``extra``.
_ExportLine = msgspec.defstruct(
    "_ExportLine",
    [(f.column, _TYPES[f.kind], None) for f in (*SHARED, *FIELDS)],
    rename={f.column: _pascal(f.key) for f in (*SHARED, *FIELDS)},
    forbid_unknown_fields=True,
)
_DECODER = msgspec.json.Decoder(_ExportLine)
# The same fields under the keys v1 sends (camelCase, as ``line_fields`` spells them).
_V1Line = msgspec.defstruct(
    "_V1Line",
    [(f.column, _TYPES[f.kind], None) for f in (*SHARED, *FIELDS)],
    rename={f.column: f.key for f in (*SHARED, *FIELDS)},
    forbid_unknown_fields=True,
)
_V1_AMOUNT_KEYS = [f.key for f in (*SHARED, *FIELDS) if f.kind is Kind.MONEY]
_NOT_NUMBERS = frozenset((str, float, bool))
_SHARED = len(SHARED)
_DAYS = [n for n, f in enumerate(FIELDS) if f.kind is Kind.DAY]


def picker(positions: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """The values at ``positions`` of a tuple, as a tuple (``itemgetter`` of one is not)."""
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions)


# Every amount of a decoded line, and its day fields: looked at in C, a line at a time.
_amounts = picker([n for n, f in enumerate((*SHARED, *FIELDS)) if f.kind is Kind.MONEY])
_days = picker(_DAYS)
_NO_DAYS = (None,) * len(_DAYS)
_given = partial(is_not, None)
_finite = Decimal.is_finite
_CREDIT_REASON = FIELDS.index(BY_KEY["creditreasoncode"])
_DOMAIN = FIELDS.index(BY_KEY["customerdomainname"])
_SKU_NAME = FIELDS.index(BY_KEY["skuname"])
_LIST_PRICE = FIELDS.index(BY_KEY["unitprice"])
_EFFECTIVE_PRICE = FIELDS.index(BY_KEY["effectiveunitprice"])
_INVOICE_NUMBER = FIELDS.index(BY_KEY["invoicenumber"])


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


def typed_line_item(line: bytes, text: str, invoice_id: str) -> LineItem | None:
    """The line read by the typed decoder, or None when the general reader must read it.

    The typed decoder takes a line whose keys are all documented, spelled as the
    export spells them, and whose values each column holds exactly; any other
    line gives None. This runs once per billed line, so it is written flat: one
    decode, one record built positionally, in ``LineItem``'s field order.
    """
    try:
        row = _DECODER.decode(line)
    except msgspec.ValidationError:
        return None  # e.g. an amount as "", or a key the export does not document
    except msgspec.DecodeError:
        return None  # not JSON: the general reader reports it
    return _typed(msgspec.structs.astuple(row), invoice_id, Provider.ONE_TIME, LineSource.V2, text)


def typed_v1_line_item(
    raw: Mapping[str, Any], invoice_id: str, provider: Provider
) -> LineItem | None:
    """A v1 line (parsed, amounts as Decimals) read as ``typed_line_item`` reads an export line.

    For the shapes the typed decoder knows (not the legacy Office and Azure ones), keys
    spelled as v1 spells them, and amounts sent as JSON numbers; None otherwise.
    """
    if provider in (Provider.OFFICE, Provider.AZURE) or type(raw) is not dict:
        return None
    if _NOT_NUMBERS.intersection(map(type, map(raw.get, _V1_AMOUNT_KEYS))):
        return None  # an amount sent as text: the general reader keeps the text in extra
    try:
        row = msgspec.convert(raw, _V1Line)
    except msgspec.ValidationError:
        return None  # a key v1 does not document (or spells otherwise), a value of another type
    values = msgspec.structs.astuple(row)
    return _typed(values, invoice_id, provider, LineSource.V1, canonical_json(raw))


def _typed(
    values: tuple[Any, ...], invoice_id: str, provider: Provider, source: str, text: str
) -> LineItem | None:
    """The record of a decoded line's values (``SHARED`` then ``FIELDS``), or None."""
    if not all(map(_finite, filter(_given, _amounts(values)))):
        return None  # msgspec reads "NaN" and "Infinity" as amounts; the general reader refuses
    (customer, name, subscription, product, sku, product_name, charge_type, quantity, billable,
     subtotal, tax, total, currency, start, end) = values[:_SHARED]  # fmt: skip
    fields = values[_SHARED:]
    # What pcsync reads must be the received value itself; otherwise the general reader
    # keeps the received value in extra.
    if (
        not currency
        or subtotal is None
        or tax is None
        or total is None
        or (billable is None and quantity is not None)
        or "" in (customer, name, subscription, product, sku, product_name, charge_type)
        or (product_name is None and fields[_SKU_NAME])
    ):
        return None
    start_day = None if start is None else _day(start)
    end_day = None if end is None else _day(end)
    if start_day is BAD or end_day is BAD:
        return None
    if _days(fields) != _NO_DAYS:
        fixed = _fixed(fields)
        if fixed is None:
            return None
        fields = fixed
    price = fields[_EFFECTIVE_PRICE]
    return LineItem(
        fields[_INVOICE_NUMBER] or invoice_id,
        provider,
        source,
        _customer(customer),
        name,
        (fields[_DOMAIN] or "").lower() or None,
        None if subscription is None else subscription.lower(),
        product,
        sku,
        product_name,
        charge_type,
        price if price is not None else fields[_LIST_PRICE],
        quantity,
        billable,
        subtotal,
        tax,
        total,
        currency.upper(),
        start_day,
        end_day,
        fields[_CREDIT_REASON] or None,
        fields,
        None,
        text,
    )


class _Memo(dict[Any, Any]):
    """A function's results by argument: a sync meets few distinct days and customers."""

    def __init__(self, function: Any) -> None:
        super().__init__()
        self._function = function

    def __missing__(self, key: Any) -> Any:
        if len(self) > 10_000:
            self.clear()
        value = self[key] = self._function(key)
        return value


_day = _Memo(exact_day).__getitem__
_customer = _Memo(normalise_customer_id).__getitem__


def _fixed(fields: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Day fields as days (None: one is not exactly a day)."""
    fixed = list(fields)
    for n in _DAYS:
        if fixed[n] is not None:
            fixed[n] = _day(fixed[n])
            if fixed[n] is BAD:
                return None
    return tuple(fixed)


def export_line_items(
    lines: Iterable[bytes], invoice_id: str, where: str, *, currency: str
) -> Iterator[LineItem]:
    """The billed lines of one export blob of invoice ``invoice_id``, billed in ``currency``,
    in order; a line of another invoice or currency is unreadable (``of_invoice``)."""
    typed = True  # until a line of the blob needs the general reader
    # What a typed line's currency is compared with: never equal when the invoice's own
    # currency is not an ISO code, so that of_invoice refuses every line of it.
    currency = currency.upper()
    billed_in = currency if is_iso_currency(currency, withdrawn=True) else None
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            raise BadResponseError(f"{where}: line {number} is not UTF-8") from exc
        if typed:
            item = typed_line_item(line, text, invoice_id)
            if item is not None:
                # Two comparisons a line; of_invoice says what is wrong.
                if item.currency != billed_in or item.invoice_id != invoice_id:
                    _of_invoice(item, (invoice_id, currency), where, number)
                yield item
                continue
            typed = number > 1  # a blob whose first line is not typed is read in general
        raw = parse_json_line(text, f"{where}: line {number}")
        try:
            item = read_line(raw, invoice_id, Provider.ONE_TIME, LineSource.V2, text)
            of_invoice(item, invoice_id, currency)
        except UNREADABLE as exc:
            raise RecordError(f"{where}: line {number}: {exc}", payload=text, source=where) from exc
        yield item


def _of_invoice(item: LineItem, invoice: tuple[str, str], where: str, number: int) -> None:
    """``of_invoice``'s refusal as the record error of line ``number`` of blob ``where``."""
    try:
        of_invoice(item, *invoice)
    except UNREADABLE as exc:
        message = f"{where}: line {number}: {exc}"
        raise RecordError(message, payload=item.raw_text, source=where) from exc
