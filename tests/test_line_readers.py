"""The v1 typed reader and the canonical JSON a v1 line's hash is taken of.

A v1 page's lines are read by the typed reader when their keys and values are
the documented ones, and by the general reader otherwise: both must give the
same record, content hash included. The canonical JSON is written by msgspec
where it spells a line as ``json.dumps`` does, and by ``json.dumps`` elsewhere.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.partner_center.export_lines import typed_v1_line_item
from connectors.partner_center.line_item import _decimal_default, canonical_json, read_line
from connectors.partner_center.records import UNREADABLE, Provider


def _v1_rows() -> list[dict[str, Any]]:
    from connectors.simulator.data import Dataset, Scale
    from connectors.simulator.wire import dumps

    data = Dataset(Scale(), date(2026, 11, 25))
    rows = []
    for invoice in data.invoices[:6]:
        for position in range(data.line_count(invoice)):
            # Through the wire format, so amounts parse as the connector parses them.
            text = dumps(data.line_json(invoice, position)).decode()
            rows.append(json.loads(text, parse_float=Decimal))
    return rows


V1_ROWS = _v1_rows()
_EDITS = {
    "drop": None,
    "blank": "",
    "zero": Decimal("0.00"),
    "text amount": "12.50",
    "padded amount": " 12.50",
    "nan": float("nan"),  # what json.loads makes of a NaN literal
    "nan text": "NaN",
    "bool": True,
    "int": 7,
    "null": None,
    "non-ascii": "Zürich\u2028",
    "control": "a\x7fb\tc",
}


def test_the_typed_reader_takes_the_simulators_v1_lines_as_the_general_one() -> None:
    for row in V1_ROWS:
        typed = typed_v1_line_item(row, "G1", Provider.ONE_TIME)
        assert typed is not None
        general = read_line(row, "G1", Provider.ONE_TIME, "v1")
        assert typed == general
        assert typed.raw_text == general.raw_text  # the same content hash


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(V1_ROWS),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "subtotal",
                    "taxTotal",
                    "totalForCustomer",
                    "effectiveUnitPrice",
                    "unitPrice",
                    "quantity",
                    "billableQuantity",
                    "productName",
                    "skuName",
                    "customerId",
                    "subscriptionId",
                    "chargeStartDate",
                    "resellerMpnId",
                    "productQualifiers",
                    "hasPartnerEarnedCredit",
                    "usageDate",
                    "NewField",
                    "Subtotal",
                ]
            ),
            st.sampled_from(sorted(_EDITS)),
        ),
        max_size=4,
    ),
    st.sampled_from([Provider.ONE_TIME, Provider.MARKETPLACE, Provider.OFFICE, Provider.AZURE]),
)
def test_the_typed_v1_reader_reads_a_line_as_the_general_one_or_leaves_it(  # type: ignore[no-untyped-def]
    row, edits, provider
) -> None:
    raw = dict(row)
    for key, edit in edits:
        if edit == "drop":
            raw.pop(key, None)
        else:
            raw[key] = _EDITS[edit]
    typed = typed_v1_line_item(raw, "G1", provider)
    try:
        general = read_line(raw, "G1", provider, "v1")
    except UNREADABLE:
        assert typed is None  # the general reader names what is wrong
        return
    if typed is not None:
        assert typed == general  # every documented field and extra, too
        assert typed.raw_text == general.raw_text
        assert [str(v) for v in typed.fields] == [str(v) for v in general.fields]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(), _JSON, max_size=8))
def test_canonical_json_is_what_json_dumps_writes(raw: dict[str, Any]) -> None:
    try:
        expected = json.dumps(raw, default=_decimal_default, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return
    assert canonical_json(raw) == expected


def test_a_v1_page_read_line_by_line_reads_as_json_loads_reads_it() -> None:
    from connectors.partner_center.line_pages import line_page, parsed_line
    from connectors.simulator.wire import dumps

    page = {"totalCount": 3, "items": V1_ROWS[:3], "links": {"next": {"uri": "/x"}}}
    content = dumps(page)
    read = line_page(content, "page")
    expected = json.loads(content, parse_float=Decimal)
    assert [parsed_line(item) for item in read["items"]] == expected["items"]
    assert [str(parsed_line(item)["subtotal"]) for item in read["items"]] == [
        str(item["subtotal"]) for item in expected["items"]
    ]
    assert read["links"] == expected["links"]
    # What msgspec refuses, json reads: a NaN literal, a lone surrogate.
    odd = b'{"items": [{"subtotal": NaN, "customerName": "\\ud800"}]}'
    (item,) = line_page(odd, "page")["items"]
    assert str(item["subtotal"]) == "nan"
    assert item["customerName"] == "\ud800"
    assert line_page(b'{"items": 5}', "page") == {"items": 5}  # the caller's check names it


def test_a_v1_page_keeps_its_lines_as_text_unless_a_key_is_spelled_otherwise() -> None:
    """The documented page is read lazily; a key in another case makes it read whole, kept."""
    import msgspec

    from connectors.partner_center.line_pages import line_page
    from connectors.simulator.wire import collection, dumps

    page = collection(V1_ROWS[:2], {"uri": "/x", "headers": []}, "/self", token="t1")
    read = line_page(dumps(page), "page")
    assert all(type(item) is msgspec.Raw for item in read["items"])  # the lazy reading
    assert read["continuationToken"] == "t1"
    page["Links"] = page.pop("links")
    read = line_page(dumps(page), "page")
    assert read["Links"]["next"]["uri"] == "/x"  # read whole: nothing the paginator needs lost
