"""The connector against `responses`: paging, retries, errors, exports, no secrets leaked.

Real MSAL and real requests run; only the network edge is faked.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from connectors.partner_center import (
    ClientOptions,
    Credentials,
    Endpoints,
    PartnerCenter,
    Provider,
)
from connectors.partner_center.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    ConflictError,
    ExportError,
    NotFoundError,
    ServerError,
    ThrottledError,
    TransportError,
)
from connectors.partner_center.exports import ExportRunner

AUTH = "https://login.test.example"
API = "https://pc.test.example"
GRAPH = "https://graph.test.example"
STORAGE = "https://storage.test.example/root"
TENANT = "partner.onmicrosoft.com"
SECRET = "Zz9~very.secret-client-value"
TOKEN_URL = f"{AUTH}/{TENANT}/oauth2/v2.0/token"


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{AUTH}/{TENANT}/v2.0/.well-known/openid-configuration",
            json={
                "token_endpoint": TOKEN_URL,
                "authorization_endpoint": f"{AUTH}/{TENANT}/oauth2/v2.0/authorize",
                "issuer": f"{AUTH}/{TENANT}/v2.0",
            },
        )
        mock.post(
            TOKEN_URL,
            json={"token_type": "Bearer", "expires_in": 3599, "access_token": "token-one"},
        )
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def connect(sleeps: list[float], **options: object) -> PartnerCenter:
    return PartnerCenter.connect(
        Credentials(TENANT, "client-id", SECRET),
        Endpoints(authority_host=AUTH, api_base_url=API, graph_base_url=GRAPH),
        ClientOptions(**{"max_retries": 3, **options}),  # type: ignore[arg-type]
        sleep=sleeps.append,
    )


def customer(n: int) -> dict[str, object]:
    tenant = f"00000000-0000-0000-0000-{n:012d}"
    return {
        "id": tenant,
        "companyProfile": {
            "tenantId": tenant,
            "domain": f"c{n}.onmicrosoft.com",
            "companyName": f"Customer {n}",
        },
        "relationshipToPartner": "reseller",
        "attributes": {"objectType": "Customer"},
    }


def seek_page(items: list[object], next_uri: str | None, token: str | None) -> dict[str, object]:
    links: dict[str, object] = {"self": {"uri": "/v1/customers?size=2", "method": "GET"}}
    if next_uri:
        links["next"] = {
            "uri": next_uri,
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": token}],
        }
    return {"totalCount": len(items), "items": items, "links": links}


def calls_to(api: responses.RequestsMock, prefix: str) -> list[responses.Call]:
    return [call for call in api.calls if call.request.url.startswith(prefix)]


# --- paging ----------------------------------------------------------------------------------


def test_seek_paging_follows_next_links_with_continuation_header(api, sleeps) -> None:
    api.get(
        f"{API}/v1/customers?size=500",
        json=seek_page([customer(1), customer(2)], "/v1/customers?size=2&seekOperation=Next", "t1"),
    )
    api.get(
        f"{API}/v1/customers?size=2&seekOperation=Next",
        json=seek_page([customer(3)], "/customers?size=2&seekOperation=Next", "t2"),
        match=[matchers.header_matcher({"MS-ContinuationToken": "t1"})],
    )
    api.get(
        f"{API}/v1/customers?size=2&seekOperation=Next",
        json=seek_page([customer(4)], None, None),
        match=[matchers.header_matcher({"MS-ContinuationToken": "t2"})],
    )
    names = [c.name for c in connect(sleeps).customers()]
    assert names == ["Customer 1", "Customer 2", "Customer 3", "Customer 4"]
    assert all(
        call.request.headers["Authorization"] == "Bearer token-one" for call in calls_to(api, API)
    )


def test_repeated_continuation_token_stops_the_loop(api, sleeps) -> None:
    looping = seek_page([customer(1)], "/v1/customers?size=2&seekOperation=Next", "same")
    api.get(f"{API}/v1/customers?size=500", json=looping)
    api.get(f"{API}/v1/customers?size=2&seekOperation=Next", json=looping)
    with pytest.raises(BadResponseError, match="continuation token repeated"):
        list(connect(sleeps).customers())
    assert len(calls_to(api, f"{API}/v1/customers")) == 2


def _spelled(body: dict[str, object], spelling: str) -> dict[str, object]:
    """A seek page's paging keys as a .NET serializer may spell them (case-insensitive)."""
    if spelling == "PascalCase":
        links: dict[str, object] = body["links"]  # type: ignore[assignment]
        following: dict[str, object] = links.pop("next")  # type: ignore[assignment]
        headers: list[dict[str, object]] = following.pop("headers")  # type: ignore[assignment]
        links["Next"] = {
            "Uri": following["uri"],
            "Method": "GET",
            "Headers": [{"Key": h["key"], "Value": h["value"]} for h in headers],
        }
        body["Links"] = body.pop("links")
    else:  # the token only in the body, as "ContinuationToken"
        (header,) = body["links"]["next"].pop("headers")  # type: ignore[index]
        body["ContinuationToken"] = header["value"]
    return body


@pytest.mark.parametrize("spelling", ["PascalCase", "token in the body"])
def test_seek_paging_reads_the_next_link_in_any_case(api, sleeps, spelling: str) -> None:
    first = seek_page([customer(1)], "/v1/customers?size=2&seekOperation=Next", "t1")
    api.get(f"{API}/v1/customers?size=500", json=_spelled(first, spelling))
    api.get(
        f"{API}/v1/customers?size=2&seekOperation=Next",
        json=seek_page([customer(2)], None, None),
        match=[matchers.header_matcher({"MS-ContinuationToken": "t1"})],
    )
    names = [c.name for c in connect(sleeps).customers()]
    assert names == ["Customer 1", "Customer 2"]


@pytest.mark.parametrize("spelling", ["PascalCase", "token in the body"])
def test_v1_line_item_pages_read_the_next_link_in_any_case(api, sleeps, spelling: str) -> None:
    """The line pages' own reader (lines kept as text) keeps a link it does not spell."""
    url = f"{API}/v1/invoices/G000024135/lineitems"
    more = "/invoices/G000024135/lineitems/OneTime/BillingLineItems?size=2000&seekOperation=Next"
    first = seek_page([LINE], more, "t1")
    api.get(url, body=json.dumps(_spelled(first, spelling)), match=[_first_lines])
    api.get(
        f"{url}/OneTime/BillingLineItems",
        body=json.dumps(seek_page([{**LINE, "subtotal": 7}], None, None)),
        match=[matchers.header_matcher({"MS-ContinuationToken": "t1"})],
    )
    lines = list(connect(sleeps).v1_line_items("G000024135", Provider.ONE_TIME, currency="USD"))
    assert [line.subtotal for line in lines] == [Decimal("18.3"), Decimal("7")]


def test_offset_paging_reads_the_next_link_in_any_case(api, sleeps) -> None:
    first = json.loads(_invoice_page(0, 2, more=True))
    first["Links"] = {"Next": {"Uri": first["links"]["next"]["uri"], "Headers": []}}
    del first["links"]
    api.get(
        f"{API}/v1/invoices",
        body=json.dumps(first),
        match=[matchers.query_param_matcher({"size": "2", "offset": "0"})],
    )
    api.get(
        f"{API}/v1/invoices",
        body=_invoice_page(2, 1, more=False),
        match=[matchers.query_param_matcher({"size": "2", "offset": "2"})],
    )
    invoices = list(connect(sleeps, page_size=2).invoices())
    assert [i.id for i in invoices] == [f"G{n:09d}" for n in range(3)]


def invoice(n: int) -> dict[str, object]:
    return {
        "id": f"G{n:09d}",
        "invoiceDate": "2026-10-05T22:40:37.5897767Z",
        "billingPeriodStartDate": "2026-09-01T00:00:00Z",
        "billingPeriodEndDate": "2026-09-30T00:00:00Z",
        "totalCharges": Decimal("100.10"),
        "paidAmount": Decimal("-100.10"),
        "currencyCode": "usd",
        "invoiceDetails": [
            {"invoiceLineItemType": "billing_line_items", "billingProvider": "one_time"}
        ],
        "attributes": {"objectType": "Invoice"},
    }


def _invoice_page(offset: int, count: int, *, more: bool, size: int = 2) -> str:
    body: dict[str, object] = {
        "totalCount": count,  # Microsoft's totalCount counts this page's items only
        "items": [invoice(offset + i) for i in range(count)],
        "links": {"self": {"uri": f"/invoices?size={size}&offset={offset}"}},
    }
    if more:
        next_uri = f"/invoices?size={size}&offset={offset + count}"  # relative, without /v1
        body["links"]["next"] = {"uri": next_uri, "method": "GET", "headers": []}  # type: ignore[index]
    return json.dumps(body, default=str).replace('"100.10"', "100.10")


def test_offset_paging_follows_links_next_past_short_pages(api, sleeps) -> None:
    """A service that caps its pages below the size asked still lists everything."""
    for offset, count, more in ((0, 1, True), (1, 2, True), (3, 1, True), (4, 1, False)):
        api.get(
            f"{API}/v1/invoices",
            body=_invoice_page(offset, count, more=more, size=5),
            match=[matchers.query_param_matcher({"size": "5", "offset": str(offset)})],
        )
    invoices = list(connect(sleeps, page_size=5).invoices())
    assert [i.id for i in invoices] == [f"G{n:09d}" for n in range(5)]
    assert invoices[0].total_charges == Decimal("100.10")
    assert invoices[0].paid_amount == Decimal("100.10")
    assert invoices[0].currency == "USD"


@pytest.mark.parametrize("last", ["no next link", "an empty page"])
def test_offset_paging_ends_on_a_page_without_links_next_or_an_empty_page(
    api, sleeps, last: str
) -> None:
    api.get(
        f"{API}/v1/invoices",
        body=_invoice_page(0, 2, more=last == "an empty page"),
        match=[matchers.query_param_matcher({"size": "2", "offset": "0"})],
    )
    api.get(
        f"{API}/v1/invoices",
        body=_invoice_page(2, 0, more=True),
        match=[matchers.query_param_matcher({"size": "2", "offset": "2"})],
    )
    assert len(list(connect(sleeps, page_size=2).invoices())) == 2
    assert len(calls_to(api, f"{API}/v1/invoices")) == (2 if last == "an empty page" else 1)


def test_offset_paging_resumes_after_what_was_served_whatever_the_link_says(api, sleeps) -> None:
    """Asked for 4, served 2, linked to offset 4: the next request asks for offset 2."""
    first = json.loads(_invoice_page(0, 2, more=True, size=4))
    first["links"]["next"]["uri"] = "/invoices?size=4&offset=4"
    api.get(
        f"{API}/v1/invoices",
        body=json.dumps(first),
        match=[matchers.query_param_matcher({"size": "4", "offset": "0"})],
    )
    api.get(
        f"{API}/v1/invoices",
        body=_invoice_page(2, 2, more=False, size=4),
        match=[matchers.query_param_matcher({"size": "4", "offset": "2"})],
    )
    invoices = list(connect(sleeps, page_size=4).invoices())
    assert [i.id for i in invoices] == [f"G{n:09d}" for n in range(4)]


# --- retries and errors ------------------------------------------------------------------------


def test_429_waits_retry_after_and_reuses_the_request_id(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(
        url,
        status=429,
        headers={"Retry-After": "7"},
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."},
    )
    api.get(url, json={"totalCount": 0, "items": []})
    client = connect(sleeps)
    assert list(client.subscriptions("c1")) == []
    assert len(sleeps) == 1
    assert 7 <= sleeps[0] < 8
    first, second = calls_to(api, url)
    assert first.request.headers["MS-RequestId"] == second.request.headers["MS-RequestId"]
    assert first.request.headers["MS-CorrelationId"] == client.http.correlation_id
    assert client.http.stats.throttled == 1


def test_5xx_backs_off_exponentially_then_succeeds(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    for _ in range(3):
        api.get(url, status=503, json={"code": "503", "description": "unavailable"})
    api.get(url, json={"totalCount": 0, "items": []})
    assert list(connect(sleeps, max_retries=5).subscriptions("c1")) == []
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0
    assert 2.0 <= sleeps[2] <= 4.0


def test_5xx_gives_up_after_max_retries(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, status=500, json={"code": "500", "description": "boom"})
    with pytest.raises(ServerError, match="500 500: boom"):
        list(connect(sleeps, max_retries=2).subscriptions("c1"))
    assert len(calls_to(api, url)) == 3


def test_connection_errors_are_retried(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, body=requests.ConnectionError("reset by peer"))
    api.get(url, json={"totalCount": 0, "items": []})
    assert list(connect(sleeps).subscriptions("c1")) == []
    assert len(sleeps) == 1


def test_connection_errors_exhaust_into_transport_error(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, body=requests.ConnectionError("reset by peer"))
    with pytest.raises(TransportError, match="ConnectionError"):
        list(connect(sleeps, max_retries=1).subscriptions("c1"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"totalCount": 2, "items": [{"id": "a"',  # cut off mid-document
        b"<html><body>502 Bad Gateway</body></html>",  # an error page with a 200
        b'{"code": "500", "description": "an error body"}',  # JSON, but not a collection
    ],
)
def test_a_200_that_is_not_the_expected_json_is_retried(api, sleeps, body: bytes) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, body=body)
    api.get(url, json={"totalCount": 0, "items": []})
    assert list(connect(sleeps).subscriptions("c1")) == []
    assert len(calls_to(api, url)) == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ApiError),
        (403, ApiError),
        (404, NotFoundError),
        (409, ConflictError),
        (412, ConflictError),
        (429, ThrottledError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_exception(api, sleeps, status: int, expected: type[Exception]) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(
        url,
        status=status,
        json={
            "code": "800091",
            "description": "Cannot update a subscription with suspended status",
            "data": [],
            "source": "PartnerFD",
        },
    )
    with pytest.raises(expected) as info:
        list(connect(sleeps, max_retries=0).subscriptions("c1"))
    error = info.value
    assert isinstance(error, ApiError)
    assert error.status == status
    assert error.code == "800091"
    assert "800091: Cannot update a subscription with suspended status" in str(error)


def test_client_errors_are_not_retried(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, status=400, json={"code": "2011", "description": "deleted"})
    with pytest.raises(ApiError):
        list(connect(sleeps).subscriptions("c1"))
    assert len(calls_to(api, url)) == 1
    assert sleeps == []


def test_401_gets_a_fresh_token_once(api, sleeps) -> None:
    api.post(
        TOKEN_URL, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "token-two"}
    )
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, status=401, json={"code": "401", "description": "expired"})
    api.get(url, json={"totalCount": 0, "items": []})
    assert list(connect(sleeps).subscriptions("c1")) == []
    first, second = calls_to(api, url)
    assert first.request.headers["Authorization"] == "Bearer token-one"
    assert second.request.headers["Authorization"] == "Bearer token-two"
    assert len(calls_to(api, TOKEN_URL)) == 2


def test_a_second_401_fails(api, sleeps) -> None:
    url = f"{API}/v1/customers/c1/subscriptions"
    api.get(url, status=401, json={"code": "401", "description": "token rejected"})
    with pytest.raises(AuthenticationError, match="401"):
        list(connect(sleeps).subscriptions("c1"))
    assert len(calls_to(api, url)) == 2


def test_entra_refusal_carries_the_aadsts_code_not_the_secret(api, sleeps, caplog) -> None:
    api.replace(
        responses.POST,
        TOKEN_URL,
        status=401,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
        },
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as info:
        list(connect(sleeps).subscriptions("c1"))
    assert info.value.code == "AADSTS7000215"
    assert "AADSTS7000215: Invalid client secret provided." in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text
    token_call = calls_to(api, TOKEN_URL)[0]
    assert SECRET in token_call.request.body  # it was sent where it belongs, and only there


# --- line items and records ---------------------------------------------------------------

LINE = {
    "customerId": "org:9060D13D-C5ED-482E-B059-A15A38000000",
    "customerName": "Fabrikam",
    "invoiceNumber": "G000024135",
    "subscriptionId": "281E26FE-9CE7-415B-911C-F39232000000",
    "productId": "CFQ7TTC0LH18",
    "chargeType": "cycleCharge",
    "unitPrice": 6.1,
    "quantity": 3,
    "billableQuantity": 3,
    "subtotal": 18.3,
    "taxTotal": 1.46,
    "totalForCustomer": 19.76,
    "currency": "USD",
    "chargeStartDate": "2026-10-01T00:00:00",
    "chargeEndDate": "2026-10-31T00:00:00",
}


_first_lines = matchers.query_param_matcher(
    {"provider": "onetime", "invoicelineitemtype": "billinglineitems", "size": "2000"}
)


def test_v1_onetime_lines_are_exact_decimals(api, sleeps) -> None:
    api.get(
        f"{API}/v1/invoices/G000024135/lineitems",
        body=json.dumps({"totalCount": 1, "items": [LINE], "links": {}}),
        match=[
            matchers.query_param_matcher(
                {"provider": "onetime", "invoicelineitemtype": "billinglineitems", "size": "2000"}
            )
        ],
    )
    (line,) = connect(sleeps).v1_line_items("G000024135", Provider.ONE_TIME, currency="USD")
    assert line.subtotal == Decimal("18.3")
    assert line.total_for_customer == Decimal("19.76")
    assert line.customer_id == "9060d13d-c5ed-482e-b059-a15a38000000"
    assert line.subscription_id == "281e26fe-9ce7-415b-911c-f39232000000"
    assert line.source == "v1"


def _gzip_lines(rows: list[dict[str, object]]) -> bytes:
    return gzip.compress(b"".join(json.dumps(row).encode() + b"\n" for row in rows))


def _pascal(row: dict[str, object]) -> dict[str, object]:
    return {key[:1].upper() + key[1:]: value for key, value in row.items()}


MANIFEST = f"{GRAPH}/v1.0/reports/partners/billing/manifests/m-1"


def register_export(api: responses.RequestsMock, rows: list[dict[str, object]]) -> None:
    op = f"{GRAPH}/v1.0/reports/partners/billing/operations/op-1"
    api.post(
        f"{GRAPH}/v1.0/reports/partners/billing/reconciliation/billed/export",
        status=202,
        headers={"Location": op},
        match=[matchers.json_params_matcher({"invoiceId": "G000024135", "attributeSet": "full"})],
    )
    api.get(op, json={"id": "op-1", "status": "running"}, headers={"Retry-After": "5"})
    api.get(
        op,
        json={
            "id": "op-1",
            "status": "succeeded",
            "resourceLocation@odata.navigationLink": MANIFEST,
        },
    )
    api.get(
        MANIFEST,
        json={
            "id": "m-1",
            "rootDirectory": STORAGE,
            "sasToken": "sv=1&sr=d&sig=SECRETSIG",
            "blobs": [{"name": "part-0.json.gz"}, {"name": "part-1.json.gz"}],
        },
    )
    api.get(f"{STORAGE}/part-0.json.gz?sv=1&sr=d&sig=SECRETSIG", body=_gzip_lines(rows[:1]))
    api.get(f"{STORAGE}/part-1.json.gz?sv=1&sr=d&sig=SECRETSIG", body=_gzip_lines(rows[1:]))


def test_v2_export_flow_streams_rows_without_bearer_to_storage(api, sleeps) -> None:
    rows = [_pascal(LINE), _pascal({**LINE, "subtotal": -2.5, "creditReasonCode": "Credit"})]
    register_export(api, rows)
    lines = list(connect(sleeps).v2_line_items("G000024135", currency="USD"))
    assert [line.subtotal for line in lines] == [Decimal("18.3"), Decimal("-2.5")]
    assert lines[1].credit_reason_code == "Credit"
    assert {line.source for line in lines} == {"v2"}
    assert 5 in [int(s) for s in sleeps]
    storage_calls = calls_to(api, STORAGE)
    assert len(storage_calls) == 2
    assert all("Authorization" not in call.request.headers for call in storage_calls)
    graph_calls = calls_to(api, GRAPH)
    assert all(call.request.headers["Authorization"] == "Bearer token-one" for call in graph_calls)


def test_failed_export_operation_is_an_export_error(api, sleeps) -> None:
    op = f"{GRAPH}/v1.0/reports/partners/billing/operations/op-2"
    api.post(
        f"{GRAPH}/v1.0/reports/partners/billing/reconciliation/billed/export",
        status=202,
        headers={"Location": op},
    )
    api.get(
        op,
        json={
            "id": "op-2",
            "status": "failed",
            "error": {"code": "5000", "message": "No data available"},
        },
    )
    with pytest.raises(ExportError, match="op-2 failed: 5000 No data available"):
        list(connect(sleeps).v2_line_items("G000024135", currency="USD"))


def test_export_gives_up_at_its_deadline(api, sleeps) -> None:
    op = f"{GRAPH}/v1.0/reports/partners/billing/operations/op-3"
    api.post(
        f"{GRAPH}/v1.0/reports/partners/billing/reconciliation/billed/export",
        status=202,
        headers={"Location": op},
    )
    api.get(op, json={"id": "op-3", "status": "running"}, headers={"Retry-After": "30"})
    client = connect(sleeps)
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    runner = ExportRunner(
        client.http, GRAPH, "scope", deadline_seconds=100, clock=clock, sleep=sleep
    )
    with pytest.raises(ExportError, match=r"still running after 1[0-9]{2}s"):
        runner.wait(runner.request_billed("G000024135"))
    assert 4 <= len(calls_to(api, op)) <= 5


def test_storage_errors_never_show_the_sas_signature(api, sleeps) -> None:
    register_export(api, [_pascal(LINE)])
    api.replace(
        responses.GET,
        f"{STORAGE}/part-0.json.gz?sv=1&sr=d&sig=SECRETSIG",
        status=403,
        body="<Error><Code>AuthenticationFailed</Code></Error>",
    )
    with pytest.raises(ApiError) as info:
        list(connect(sleeps).v2_line_items("G000024135", currency="USD"))
    assert "SECRETSIG" not in str(info.value)
    assert "part-0.json.gz" in str(info.value)


def test_a_blob_served_empty_is_downloaded_again(api, sleeps) -> None:
    """Even a blob of no lines is a gzip member of some 20 bytes: an empty 200 is a download
    that did not arrive, not an export without lines."""
    register_export(api, [_pascal(LINE), _pascal({**LINE, "subtotal": 7})])
    blob = f"{STORAGE}/part-1.json.gz?sv=1&sr=d&sig=SECRETSIG"
    api.replace(responses.GET, blob, body=b"")
    api.add(responses.GET, blob, body=_gzip_lines([_pascal({**LINE, "subtotal": 7})]))
    lines = list(connect(sleeps).v2_line_items("G000024135", currency="USD"))
    assert [line.subtotal for line in lines] == [Decimal("18.3"), Decimal("7")]
    assert len(calls_to(api, f"{STORAGE}/part-1.json.gz")) == 2


def test_a_blob_always_served_empty_is_refused(api, sleeps) -> None:
    register_export(api, [_pascal(LINE), _pascal({**LINE, "subtotal": 7})])
    blob = f"{STORAGE}/part-1.json.gz?sv=1&sr=d&sig=SECRETSIG"
    api.replace(responses.GET, blob, body=b"")
    with pytest.raises(BadResponseError, match=r"blob part-1.json.gz: download kept failing"):
        list(connect(sleeps).v2_line_items("G000024135", currency="USD"))
    assert len(calls_to(api, f"{STORAGE}/part-1.json.gz")) > 1  # tried again before refusing


def test_legacy_office_lines_use_offset_paging(api, sleeps) -> None:
    office = {
        "customerId": "C1",
        "syndicationPartnerSubscriptionNumber": "S1",
        "subtotal": 1,
        "tax": 0,
        "totalForCustomer": 1,
        "currency": "USD",
    }
    # The legacy line items' next link in the older path style, without an offset.
    more = {"next": {"uri": "/invoices/D1/lineitems/Office/BillingLineItems", "headers": []}}
    for offset, count in ((0, 2), (2, 1)):
        api.get(
            f"{API}/v1/invoices/D1/lineitems",
            json={
                "totalCount": count,
                "items": [office] * count,
                "links": more if offset == 0 else {},
            },
            match=[
                matchers.query_param_matcher(
                    {
                        "provider": "office",
                        "invoicelineitemtype": "billinglineitems",
                        "size": "2",
                        "offset": str(offset),
                    }
                )
            ],
        )
    lines = list(connect(sleeps, page_size=2).v1_line_items("D1", Provider.OFFICE, currency="USD"))
    assert len(lines) == 3
    assert {line.subscription_id for line in lines} == {"s1"}


def test_daily_rated_usage_reads_billing_pre_tax_total(api, sleeps) -> None:
    usage = {
        "customerId": "C1",
        "subscriptionId": "AZ",
        "billingPreTaxTotal": 0.0432,
        "billingCurrency": "USD",
        "unitPrice": 0.0036,
        "quantity": 12.0,
        "chargeStartDate": "2024-05-01T00:00:00Z",
    }
    api.get(
        f"{API}/v1/invoices/G1/lineitems",
        body=json.dumps({"totalCount": 1, "items": [usage], "links": {}}),
        match=[
            matchers.query_param_matcher(
                {
                    "provider": "onetime",
                    "invoicelineitemtype": "usagelineitems",
                    "currencycode": "USD",
                    "period": "previous",
                    "size": "2000",
                }
            )
        ],
    )
    (line,) = connect(sleeps).usage_line_items("G1", "USD")
    assert line.subtotal == Decimal("0.0432")
    assert line.currency == "USD"


def test_invoice_by_id_needs_app_user_credentials(api, sleeps) -> None:
    api.get(
        f"{API}/v1/invoices/G1",
        status=403,
        json={"code": "600036", "description": "requires App+User"},
    )
    with pytest.raises(ApiError, match="403 600036: requires App\\+User"):
        connect(sleeps).invoice("G1")
