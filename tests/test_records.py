"""Records read Microsoft's JSON liberally and produce one strict, exact shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.partner_center.export_lines import typed_line_item
from connectors.partner_center.line_fields import BY_KEY, FIELDS
from connectors.partner_center.line_item import LineItem, read_line
from connectors.partner_center.records import (
    Invoice,
    Provider,
    Subscription,
    SubscriptionStatus,
    parse_date,
    parse_datetime,
)
from reconciliation.errors import DataError


def loads(text: str) -> dict[str, object]:
    return json.loads(text, parse_float=Decimal)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-02-08T22:40:37.5897767Z", datetime(2018, 2, 8, 22, 40, 37, 589776, tzinfo=UTC)),
        ("2017-05-12T00:00:00", datetime(2017, 5, 12, tzinfo=UTC)),
        ("2019-01-03T19:53:55.1292512+00:00", datetime(2019, 1, 3, 19, 53, 55, 129251, tzinfo=UTC)),
        ("2019-01-03T23:00:00+02:00", datetime(2019, 1, 3, 21, 0, tzinfo=UTC)),
        ("0001-01-01T00:00:00", None),
        ("", None),
    ],
)
def test_dates_in_every_shape_microsoft_sends(text: str, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-01",
        "2026-10-01T00:00:00Z",
        "2026-10-01T00:00:00",
        "2026-10-01T00:00:00.0000000Z",
        "2026-10-01T23:30:00-02:00",  # the next day in UTC
        "0001-01-01T00:00:00Z",
        "",
    ],
)
def test_a_date_is_the_utc_day_of_the_datetime(text: str) -> None:
    moment = parse_datetime(text)
    assert parse_date(text) == (moment.date() if moment else None)


def test_bad_date_is_a_data_error() -> None:
    with pytest.raises(DataError, match="not an ISO 8601 date"):
        parse_date("2026-13-01")
    with pytest.raises(DataError, match="not an ISO 8601 date"):
        parse_datetime("yesterday")


def test_camel_and_pascal_case_lines_are_the_same_record() -> None:
    v1 = loads(
        '{"customerId": "org:ABC", "subscriptionId": "S1", "subtotal": 0.1, '
        '"taxTotal": 0.02, "totalForCustomer": 0.12, "currency": "eur", '
        '"billableQuantity": 2, "chargeStartDate": "2026-10-01T00:00:00Z"}'
    )
    v2 = loads(
        '{"CustomerId": "org:abc", "SubscriptionId": "s1", "Subtotal": 0.1, '
        '"TaxTotal": 0.02, "TotalForCustomer": 0.12, "Currency": "EUR", '
        '"BillableQuantity": 2, "ChargeStartDate": "2026-10-01T00:00:00"}'
    )
    a = read_line(v1, "G1", Provider.ONE_TIME, "v1")
    b = read_line(v2, "G1", Provider.ONE_TIME, "v2")
    assert (a.customer_id, a.subscription_id, a.subtotal, a.currency, a.charge_start_date) == (
        "abc",
        "s1",
        Decimal("0.1"),
        "EUR",
        date(2026, 10, 1),
    )
    assert (b.customer_id, b.subscription_id, b.subtotal, b.tax_total, b.total_for_customer) == (
        a.customer_id,
        a.subscription_id,
        a.subtotal,
        a.tax_total,
        a.total_for_customer,
    )


def test_legacy_office_line_uses_the_syndication_subscription_and_tax() -> None:
    raw = loads(
        '{"customerId": "74221236-D09C-4870-AC1D-33E155E9AEBE", "subscriptionId": '
        '"4KIKawEAAAAAAAEA", "syndicationPartnerSubscriptionNumber": '
        '"1F58ACD7-FE51-4705-9567-D009C9ADA150", "offerName": "EXCHANGE ONLINE (PLAN 2)", '
        '"subtotal": 24.0, "tax": 1.92, "totalForCustomer": 25.92, "currency": "USD", '
        '"quantity": 3}'
    )
    line = read_line(raw, "D02005YFHI", Provider.OFFICE, "v1")
    assert line.subscription_id == "1f58acd7-fe51-4705-9567-d009c9ada150"
    assert line.tax_total == Decimal("1.92")
    assert line.product_name == "EXCHANGE ONLINE (PLAN 2)"
    assert line.invoice_id == "D02005YFHI"


def test_legacy_azure_line_reads_pretax_charges_in_any_case() -> None:
    raw = loads(
        '{"customerId": "c", "subscriptionId": "s", "serviceName": "Storage", '
        '"PretaxCharges": 10.55, "taxAmount": 0.84, "postTaxTotal": 11.39, '
        '"currency": "GBP"}'
    )
    line = read_line(raw, "D1", Provider.AZURE, "v1")
    assert (line.subtotal, line.tax_total, line.total_for_customer) == (
        Decimal("10.55"),
        Decimal("0.84"),
        Decimal("11.39"),
    )


def test_line_without_currency_is_a_data_error() -> None:
    with pytest.raises(DataError, match="without a currency"):
        read_line({"subtotal": 1}, "G1", Provider.ONE_TIME, "v1")


def test_line_without_a_subtotal_is_a_data_error_not_zero() -> None:
    raw = {"customerId": "c", "taxTotal": 1, "totalForCustomer": 11, "currency": "USD"}
    with pytest.raises(DataError, match="G1 without a subtotal"):
        read_line(raw, "G1", Provider.ONE_TIME, "v1")


def test_daily_rated_usage_without_tax_fields_reads_its_pre_tax_total() -> None:
    # The documented usage shape has billingPreTaxTotal and no tax or total fields.
    raw = loads('{"customerId": "c", "billingPreTaxTotal": 0.4321, "billingCurrency": "EUR"}')
    line = read_line(raw, "G1", Provider.ONE_TIME, "v1")
    assert (line.subtotal, line.tax_total, line.total_for_customer) == (
        Decimal("0.4321"),
        Decimal(0),
        Decimal("0.4321"),
    )


def test_subscription_status_etag_and_product_type() -> None:
    raw = loads(
        '{"id": "A4C1340D", "status": "Suspended", "quantity": 10, "billingType": '
        '"License", "productType": {"id": "OnlineServicesNCE"}, "suspensionReasons": '
        '["CustomerCancellation"], "attributes": {"etag": "e1", "objectType": "Subscription"}}'
    )
    sub = Subscription.from_api(raw, "c1")
    assert sub.status is SubscriptionStatus.SUSPENDED
    assert (sub.id, sub.quantity, sub.billing_type, sub.product_type, sub.etag) == (
        "a4c1340d",
        10,
        "license",
        "OnlineServicesNCE",
        "e1",
    )
    assert sub.suspension_reasons == ("CustomerCancellation",)


def test_unknown_subscription_status_is_named() -> None:
    with pytest.raises(DataError, match="unknown subscription status 'frozen'"):
        Subscription.from_api({"id": "s", "status": "frozen"}, "c1")


def test_invoice_paid_amount_is_positive_and_providers_listed() -> None:
    raw = loads(
        '{"id": "G000024135", "invoiceDate": "2018-02-08T22:40:37.5897767Z", '
        '"totalCharges": 2076.63, "paidAmount": -2076.63, "currencyCode": "USD", '
        '"invoiceDetails": [{"invoiceLineItemType": "billing_line_items", '
        '"billingProvider": "one_time"}, {"invoiceLineItemType": "usage_line_items", '
        '"billingProvider": "azure"}, {"invoiceLineItemType": "BillingLineItems", '
        '"billingProvider": "Office"}]}'
    )
    invoice = Invoice.from_api(raw)
    assert invoice.total_charges == Decimal("2076.63")
    assert invoice.paid_amount == Decimal("2076.63")
    assert invoice.invoice_date == date(2018, 2, 8)
    assert invoice.providers == (Provider.ONE_TIME, Provider.OFFICE)


@pytest.mark.parametrize("spelling", ["one_time", "OneTime", "onetime", "ONE_TIME"])
def test_provider_spellings(spelling: str) -> None:
    assert Provider.parse(spelling) is Provider.ONE_TIME


def _export_rows() -> list[dict[str, object]]:
    from connectors.simulator.data import Dataset, Scale
    from connectors.simulator.wire import dumps, pascal

    data = Dataset(Scale(), date(2026, 11, 25))
    rows = []
    for invoice in data.invoices[:6]:
        for position in range(data.line_count(invoice)):
            # Through the wire format, so amounts parse as the connector parses them.
            rows.append(loads(dumps(pascal(data.line_json(invoice, position))).decode()))
    return rows


EXPORT_ROWS = _export_rows()


def _stream(
    lines: list[bytes], row: dict[str, Any], where: str = "blob test"
) -> Iterator[LineItem]:
    """``lines`` read as an export blob of the invoice ``row`` is a line of."""
    from connectors.partner_center.export_lines import export_line_items

    return export_line_items(lines, row["InvoiceNumber"], where, currency=row["Currency"])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(EXPORT_ROWS),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "Subtotal",
                    "TaxTotal",
                    "TotalForCustomer",
                    "EffectiveUnitPrice",
                    "UnitPrice",
                    "Quantity",
                    "BillableQuantity",
                    "ProductName",
                    "SkuName",
                    "InvoiceNumber",
                    "SubscriptionId",
                    "CustomerDomainName",
                    "ChargeStartDate",
                    "CreditReasonCode",
                ]
            ),
            st.sampled_from(["drop", "blank", "zero", "lower", "alternative", "nan", "inf"]),
        ),
        max_size=4,
    ),
)
def test_the_export_fast_path_reads_rows_as_the_general_one(row, edits) -> None:  # type: ignore[no-untyped-def]
    raw = dict(row)
    for key, edit in edits:
        if key not in raw:
            continue
        if edit == "drop":
            del raw[key]
        elif edit == "blank":
            raw[key] = ""
        elif edit == "zero":
            raw[key] = Decimal("0.00")
        elif edit in ("nan", "inf"):  # as strings: msgspec would read them as Decimals
            raw[key] = "NaN" if edit == "nan" else "-Infinity"
        elif edit == "lower":
            raw[key[0].lower() + key[1:]] = raw.pop(key)
        else:
            raw["Total" if key == "TotalForCustomer" else "tax"] = Decimal("1.25")
    from connectors.simulator.wire import dumps

    text = dumps(raw).decode()  # as the wire carries it: amounts as JSON numbers
    raw = loads(text)
    typed = typed_line_item(text.encode(), text, "G1")
    try:
        general = read_line(raw, "G1", Provider.ONE_TIME, "v2", text)
    except DataError:
        assert typed is None  # the general reader names what is wrong
        return
    # The typed decoder reads lines of the documented schema whose values each column
    # holds exactly; where it declines (None), the general reader takes the line.
    if typed is not None:
        assert typed == general  # every documented field and extra, too
        assert str(typed.subtotal) == str(general.subtotal)  # the same digits
        assert [str(v) for v in typed.fields] == [str(v) for v in general.fields]


def test_the_typed_decoder_reads_every_simulator_export_line_as_the_general_reader() -> None:
    from connectors.simulator.wire import dumps

    lines = [dumps(row) for row in EXPORT_ROWS]
    for line, row in zip(lines, EXPORT_ROWS, strict=True):
        typed = typed_line_item(line, line.decode(), "G1")
        assert typed is not None  # the documented schema: the typed decoder takes it
        assert typed == read_line(row, "G1", Provider.ONE_TIME, "v2", line.decode())
        assert typed.extra is None  # every key documented, every value held exactly
    streamed: list[LineItem] = []  # each invoice's lines, as its export streams them
    for invoice in dict.fromkeys(r["InvoiceNumber"] for r in EXPORT_ROWS):
        mine = [
            (x, r) for x, r in zip(lines, EXPORT_ROWS, strict=True) if r["InvoiceNumber"] == invoice
        ]
        streamed += _stream([x for x, _ in mine], mine[0][1])
    assert streamed == [read_line(r, "G1", Provider.ONE_TIME, "v2") for r in EXPORT_ROWS]
    assert [item.raw_text for item in streamed] == [line.decode() for line in lines]


def test_a_line_that_is_not_json_names_its_blob_and_line() -> None:
    from connectors.partner_center.errors import BadResponseError
    from connectors.simulator.wire import dumps

    lines = [dumps(EXPORT_ROWS[0]), dumps(EXPORT_ROWS[1])[:-9]]
    with pytest.raises(BadResponseError, match=r"blob b1: line 2 is not valid JSON"):
        list(_stream(lines, EXPORT_ROWS[0], "blob b1"))


@pytest.mark.parametrize(
    "written",
    [
        "2026-10-01T00:00:00Z",
        "2026-10-01T00:00:00",  # no Z: UTC
        "2026-10-01T00:00:00.0000000Z",  # seven fractional digits
        "2026-10-01T23:30:00-02:00",  # already the 2nd in UTC
        "2026-10-01T01:00:00+02:00",  # still the 30th of September in UTC
        "0001-01-01T00:00:00Z",  # Microsoft's "no date"
        "2026-10-01",  # a plain date
    ],
)
def test_the_typed_decoder_reads_line_dates_as_the_general_reader(written: str) -> None:
    from connectors.simulator.wire import dumps

    row = {**EXPORT_ROWS[0], "ChargeStartDate": written, "ChargeEndDate": written}
    line = dumps(row)
    general = read_line(loads(line.decode()), "G1", Provider.ONE_TIME, "v2")
    typed = typed_line_item(line, line.decode(), "G1")
    if typed is None:  # not exactly a day: the general reader keeps the text in extra
        assert general.extra == {"ChargeStartDate": written, "ChargeEndDate": written}
    else:
        assert typed == general
        assert typed.charge_start_date == typed.charge_end_date == general.charge_start_date
    # In a blob, after a first line of the documented schema: the same record either way.
    _, streamed = _stream([dumps(EXPORT_ROWS[0]), line], EXPORT_ROWS[0])
    assert streamed == general


def test_line_items_compare_and_show_without_their_json_text() -> None:
    row = {"subtotal": Decimal("1.50"), "currency": "USD", "customerId": "c"}
    a = read_line(row, "G1", Provider.ONE_TIME, "v1")
    b = read_line(row, "G1", Provider.ONE_TIME, "v2", "{}")
    assert a != b  # the source differs
    c = read_line(row, "G1", Provider.ONE_TIME, "v1", "{...}")
    assert a == c
    assert hash(a) == hash(c)
    assert "raw_text" not in repr(a)
    assert "subtotal=Decimal('1.50')" in repr(a)
    with pytest.raises(AttributeError):
        a.subtotal = Decimal(2)  # type: ignore[misc]


def test_every_documented_field_has_its_typed_value_and_unknown_fields_go_to_extra() -> None:
    raw = loads(
        '{"meterId": "M1", "usageDate": "2026-10-03T00:00:00Z", "pcToBCExchangeRate": 1.0850,'
        ' "hasPartnerEarnedCredit": true, "productQualifiers": ["Trial"], "mpnId": 4870137,'
        ' "orderDate": "2018-02-08T22:31:42.9397946Z", "subtotal": 10, "currency": "USD",'
        ' "customerId": "org:ABC", "NewFieldOfNextYear": {"a": 1.5}, "taxTotal": "",'
        ' "chargeStartDate": "2026-10-01T23:30:00-02:00"}'
    )
    line = read_line(raw, "G1", Provider.ONE_TIME, "v1")
    assert line.field("meterId") == "M1"
    assert line.field("usageDate") == date(2026, 10, 3)
    assert str(line.field("pcToBCExchangeRate")) == "1.0850"
    assert line.field("hasPartnerEarnedCredit") is True
    assert line.field("productQualifiers") == ["Trial"]
    assert line.field("mpnId") == 4870137  # an identifier: its text column stores the digits
    assert line.field("orderDate") == "2018-02-08T22:31:42.9397946Z"  # exact, all 7 digits
    assert line.customer_id == "abc"  # the tenant id, whatever its case or org: prefix
    assert line.extra == {
        "NewFieldOfNextYear": {"a": Decimal("1.5")},  # a field Microsoft adds later
        "taxTotal": "",  # an amount the column cannot hold: kept as received
        "chargeStartDate": "2026-10-01T23:30:00-02:00",  # not exactly a day
        "totalForCustomer": None,  # absent: pcsync's reading (subtotal + tax) is its own
    }
    assert len({f.column for f in FIELDS}) == len(FIELDS)
    assert all(key == key.lower() for key in BY_KEY)
