"""How the simulator writes what it answers: JSON with exact decimals, Partner Center's
collection and error shapes, a v1 line as a v2 export row, and the two ways a handler
stops early (an answer already sent, or a dropped connection)."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["Handled", "Reset", "collection", "dumps", "pascal", "pc_error"]

_DECIMAL = re.compile(r'"__dec__(-?[0-9.E+-]+)__"')


def dumps(document: Any) -> bytes:
    """JSON with Decimals written as JSON numbers, exactly as given."""
    text = json.dumps(document, default=lambda o: f"__dec__{o}__", ensure_ascii=False)
    return _DECIMAL.sub(r"\1", text).encode()


class Handled(Exception):
    """An error answer was already sent."""


class Reset(Exception):
    """Drop the connection without an answer."""


def pc_error(code: str, description: str) -> dict[str, Any]:
    """Partner Center's error document."""
    return {"code": code, "description": description, "data": [], "source": "PartnerFD"}


def collection(
    items: list[Any],
    next_link: dict[str, Any] | None,
    self_uri: str,
    token: str | None = None,
) -> dict[str, Any]:
    """Partner Center's collection document: items, links (self, next) and continuation."""
    links: dict[str, Any] = {"self": {"uri": self_uri, "method": "GET", "headers": []}}
    document: dict[str, Any] = {"totalCount": len(items), "items": items, "links": links}
    if next_link:
        links["next"] = next_link
    if token:
        document["continuationToken"] = token
    document["attributes"] = {"objectType": "Collection"}
    return document


_PASCAL_SPECIAL = {
    "pcToBCExchangeRate": "PCToBCExchangeRate",
    "pcToBCExchangeRateDate": "PCToBCExchangeRateDate",
}


def pascal(row: dict[str, Any]) -> dict[str, Any]:
    """A v1 line as a v2 export row: PascalCase keys, no ``attributes``."""
    return {
        _PASCAL_SPECIAL.get(key, key[:1].upper() + key[1:]): value
        for key, value in row.items()
        if key not in ("attributes", "invoiceLineItemType", "billingProvider")
    }
