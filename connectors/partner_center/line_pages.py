"""A v1 line-item page read as its lines' JSON text; each line parsed when its turn comes.

A page holds up to 2,000 lines. Parsed whole into dicts it is ~10 MB, and the next
page is fetched while this one is stored (``paging.pages``), so two are held; read
as its lines' text (msgspec ``Raw``: slices of the body, ~3 MB a page), a line
becomes a dict only when it is read. Pages and lines read exactly as
``json.loads(parse_float=Decimal)`` reads them (the same Decimals, integers and
text); where msgspec refuses (a NaN literal, a lone surrogate), ``json`` reads.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec

from connectors.partner_center.http import parse_json

__all__ = ["line_page", "parsed_line"]


class _Page(msgspec.Struct, forbid_unknown_fields=True):
    """What the paginators read of a page; its lines as text.

    The keys as Partner Center spells them. Any other key — ``Links`` spelled by a
    serializer that writes names in another case among them — makes the page be read
    whole, so the paginators see every key: one dropped here would end a listing early.
    """

    items: list[msgspec.Raw] | None = None
    links: Any = None
    continuationToken: Any = None
    totalCount: Any = None
    attributes: Any = None


_PAGE = msgspec.json.Decoder(_Page)
_LINE = msgspec.json.Decoder(float_hook=Decimal)


def line_page(content: bytes, where: str) -> Any:
    """A page with its ``items`` as JSON text (``parse_json``'s reading where not JSON we read)."""
    try:
        page = _PAGE.decode(content)
    except msgspec.DecodeError:  # not JSON msgspec reads, items not an array, another key
        return parse_json(content, where)
    if page.items is None:
        return parse_json(content, where)  # the caller's check names what is missing
    return {
        "items": page.items,
        "links": page.links,
        "continuationToken": page.continuationToken,
        "totalCount": page.totalCount,
    }


def parsed_line(item: Any) -> Any:
    """A page's item parsed (an item already parsed as it is)."""
    if type(item) is not msgspec.Raw:
        return item
    try:
        return _LINE.decode(item)
    except msgspec.DecodeError:
        return json.loads(bytes(item), parse_float=Decimal)
