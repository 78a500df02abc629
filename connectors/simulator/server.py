"""The built-in Partner Center: an HTTPS server speaking the real API's shapes.

It serves, on loopback and over TLS with a certificate it makes at start:

* the identity endpoints MSAL calls (OpenID discovery, the v2.0 token endpoint
  checking client id and secret or certificate assertion);
* Partner Center v1: customers (seek paging), subscriptions (GET, PATCH with
  ``If-Match`` and Microsoft's error codes), invoices (offset paging), billed
  and unbilled line items (seek paging);
* Graph v2 billing exports: POST → 202 ``Location`` → poll (``Retry-After``) →
  manifest → gzip JSON Lines blobs behind a SAS token, refusing bearer tokens;
* throttling (429 + ``Retry-After``) and deterministic faults (5xx, resets,
  truncated bodies, slow answers, non-JSON bodies).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.simulator.data import Dataset, Scale
from connectors.simulator.faults import FaultPlan, Throttle
from connectors.simulator.tls import TlsFiles, make_tls_files

__all__ = ["Simulator", "SimulatorConfig"]

log = logging.getLogger(__name__)

_DECIMAL = re.compile(r'"__dec__(-?[0-9.E+-]+)__"')


def dumps(document: Any) -> bytes:
    """JSON with Decimals written as JSON numbers, exactly as given."""
    text = json.dumps(document, default=lambda o: f"__dec__{o}__", ensure_ascii=False)
    return _DECIMAL.sub(r"\1", text).encode()


# New-commerce lines of billing periods from this date on exist only in the v2 export;
# earlier periods only on v1 (Microsoft's "Get invoice line items", Scenarios A-C).
V2_ONLY_FROM = date(2024, 2, 1)


@dataclass
class SimulatorConfig:
    """Who may sign in, how big the world is, and how unreliable the service is."""

    tenant_id: str = "partner.onmicrosoft.com"
    client_id: str = "00000000-0000-0000-0000-00000000c5c5"
    client_secret: str = "simulator-secret"  # noqa: S105 - the simulator's own test credential
    certificate_thumbprint: str | None = None
    scale: Scale = field(default_factory=Scale)
    anchor: Any = None  # datetime.date; None = today
    token_lifetime: int = 3599
    rate_limit: int = 0  # requests per throttle window; 0 = never throttle
    throttle_window_seconds: float = 60.0
    retry_after: int = 1
    faults: FaultPlan = field(default_factory=FaultPlan)
    export_seconds: float = 1.0  # how long Microsoft "prepares" an export
    export_retry_after: int = 1
    blob_lines: int = 250_000
    failing_exports: tuple[str, ...] = ()
    # Serve at most this many items a page, whatever size was asked, with links.next to
    # the rest — as a service that caps its page size does. 0: as many as asked.
    page_cap: int = 0
    # Customers whose subscriptions are refused with 403: customer id -> Partner Center
    # error code ("20002": no commerce relationship any more), or "" for a bare 403 with
    # no body, as a missing role may be answered.
    refused_customers: dict[str, str] = field(default_factory=dict)
    # The next this-many subscription PATCHes are applied, then the connection drops with
    # no answer, and a retry is not recognised by its request id: it meets the new etag
    # (412), as a client whose PATCH timed out after Microsoft applied it does.
    lose_patch_answers: int = 0
    # False: the app lacks Graph's PartnerBilling.Read.All, so billing exports answer 403.
    graph_billing_permission: bool = True
    # False: the app is not in Partner Center's App management (or lacks its role): every
    # Partner Center call answers 403 in Microsoft's error shape.
    partner_center_app: bool = True


class _Reset(Exception):
    """Drop the connection without an answer."""


class Simulator:
    """Owns the data and the running server; also usable in-process as a pytest fixture."""

    def __init__(self, config: SimulatorConfig, state_dir: Path) -> None:
        self.config = config
        self.data = Dataset(config.scale, config.anchor)
        self.tls: TlsFiles = make_tls_files(state_dir)
        self._signing_key = secrets.token_bytes(32)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._operations: dict[str, dict[str, Any]] = {}
        self._replays: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._blob_dir = state_dir / "blobs"
        self._blob_lock = threading.Lock()
        self.throttle = Throttle(
            config.rate_limit, config.retry_after, config.throttle_window_seconds
        )
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; return the base URL."""
        handler = type("Handler", (_Handler,), {"sim": self})
        server = ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert, self.tls.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # Polled every 50 ms (not 0.5 s), so stop() returns at once: tests stop hundreds.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"https://{host!s}:{port}"

    def change_subscription(self, customer_id: str, subscription_id: str, status: str) -> None:
        """Someone else (an admin in the portal) sets a subscription's status: a new etag."""
        found = self.data.find_subscription(customer_id, subscription_id)
        assert found is not None, subscription_id
        found["status"] = status
        found["suspensionReasons"] = ["PartnerInitiated"] if status == "suspended" else []
        version = int(found.get("_version", 0)) + 1
        found["_version"] = version
        found["attributes"] = {
            **found["attributes"],
            "etag": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription_id}/{version}")),
        }

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve_forever(self, host: str, port: int) -> None:
        """Serve in the foreground until interrupted (``pcsync simulator``)."""
        self.start(host, port)
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    # -- tokens and signed values ---------------------------------------------------------------

    def issue_token(self, scope: str) -> str:
        """A new opaque bearer token for ``scope``."""
        token = "sim." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (scope, time.monotonic() + self.config.token_lifetime)
        return token

    def token_scope(self, header: str | None) -> str | None:
        """The scope of a valid, unexpired bearer token, else None."""
        if not header or not header.lower().startswith("bearer "):
            return None
        entry = self._tokens.get(header[7:].strip())
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def revoke_tokens(self) -> None:
        """Forget every issued token (as if they had all expired)."""
        with self._lock:
            self._tokens.clear()

    def sign(self, value: str) -> str:
        """An HMAC tag for continuation tokens and SAS signatures."""
        return hmac.new(self._signing_key, value.encode(), hashlib.sha256).hexdigest()[:16]

    def continuation(self, key: str, offset: int) -> str:
        """An opaque, signed continuation token for ``key`` at ``offset``."""
        body = base64.urlsafe_b64encode(f"{key}|{offset}".encode()).decode()
        return f"{body},{self.sign(body)}"

    def read_continuation(self, token: str, key: str) -> int | None:
        """The offset in a continuation token, if it is genuine and for ``key``."""
        body, _, tag = token.partition(",")
        if not hmac.compare_digest(tag, self.sign(body)):
            return None
        stored_key, _, offset = base64.urlsafe_b64decode(body).decode().rpartition("|")
        return int(offset) if stored_key == key else None

    # -- export blobs -----------------------------------------------------------------------

    def export_count(self, state: dict[str, Any]) -> int:
        """How many lines an export operation holds."""
        if "invoice" in state:
            invoice = self.data.invoice(state["invoice"])
            assert invoice is not None
            return self.data.line_count(invoice)
        return len(self.data.unbilled_lines(state["unbilled"]))

    def export_blob(self, op: str, part: int) -> Path:
        """Blob ``part`` of export operation ``op``: a gzip JSON Lines file, written once.

        Storage serves an export as finished files, at the speed of a file server,
        whatever it cost Microsoft to produce them. A billed invoice never changes,
        so its blobs are written once and served to every export of it; the
        unbilled period is a snapshot taken by each export.
        """
        return self._blob_file(self._operations[op], op, part)

    def prepare_invoice_export(self, invoice_id: str) -> None:
        """Write every blob of the invoice's export now, as storage holds them ahead of a client."""
        state = {"invoice": invoice_id}
        for part in range(max(1, -(-self.export_count(state) // self.config.blob_lines))):
            self._blob_file(state, "", part)

    def _blob_file(self, state: dict[str, Any], op: str, part: int) -> Path:
        owner = f"op-{op}"
        if "invoice" in state:
            # An invoice's blobs are written once — unless a test changed what it serves.
            spoiled = sorted(
                (k, repr(v))
                for k, v in self.data.malformed.items()
                if k.startswith(f"line:{state['invoice']}:")
            )
            owner = f"invoice-{self.sign(state['invoice'] + repr(spoiled))}"
        path = self._blob_dir / f"{owner}-{self.config.blob_lines}-{part:05d}.json.gz"
        with self._blob_lock:
            if not path.exists():
                self._write_blob(state, part, path)
        return path

    def _write_blob(self, state: dict[str, Any], part: int, path: Path) -> None:
        start = part * self.config.blob_lines
        end = min(self.export_count(state), start + self.config.blob_lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        with partial.open("wb") as out:
            buffer: list[bytes] = []
            for row in self._export_rows(state, start, end):
                buffer.append(dumps(row) + b"\n")
                if len(buffer) >= 500:
                    out.write(compressor.compress(b"".join(buffer)))
                    buffer.clear()
            out.write(compressor.compress(b"".join(buffer)) + compressor.flush())
        partial.replace(path)

    def _export_rows(self, state: dict[str, Any], start: int, end: int) -> Any:
        if "invoice" in state:
            invoice = self.data.invoice(state["invoice"])
            assert invoice is not None
            for position in range(start, end):
                yield _pascal(self.data.line_json(invoice, position))
        else:
            for row in self.data.unbilled_lines(state["unbilled"])[start:end]:
                yield _pascal(row)


# --- request handling -------------------------------------------------------------------------

Route = tuple[str, re.Pattern[str], str]
ROUTES: list[Route] = [
    ("GET", re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$"), "oidc"),
    ("POST", re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$"), "token"),
    ("GET", re.compile(r"^/v1/customers$"), "customers"),
    ("GET", re.compile(r"^/v1/customers/(?P<customer>[^/]+)$"), "customer"),
    ("GET", re.compile(r"^/v1/customers/(?P<customer>[^/]+)/subscriptions$"), "subscriptions"),
    (
        "GET",
        re.compile(r"^/v1/customers/(?P<customer>[^/]+)/subscriptions/(?P<sub>[^/]+)$"),
        "subscription",
    ),
    (
        "PATCH",
        re.compile(r"^/v1/customers/(?P<customer>[^/]+)/subscriptions/(?P<sub>[^/]+)$"),
        "patch_subscription",
    ),
    (
        "GET",
        re.compile(
            r"^/v1/customers/(?P<customer>[^/]+)/subscriptions/(?P<sub>[^/]+)/azureEntitlements$",
            re.IGNORECASE,
        ),
        "azure_entitlements",
    ),
    (
        "POST",
        re.compile(
            r"^/v1/customers/(?P<customer>[^/]+)/subscriptions/(?P<sub>[^/]+)"
            r"/azureEntitlements/(?P<entitlement>[^/]+)/(?P<verb>cancel|reactivate)$",
            re.IGNORECASE,
        ),
        "azure_entitlement_action",
    ),
    ("GET", re.compile(r"^/v1/invoices$"), "invoices"),
    ("GET", re.compile(r"^/v1/invoices/unbilled/lineitems(/[^/]+/[^/]+)?$"), "unbilled"),
    (
        "GET",
        re.compile(r"^/v1/invoices/(?P<invoice>[^/]+)/lineitems(/(?P<provider>[^/]+)/[^/]+)?$"),
        "lineitems",
    ),
    ("GET", re.compile(r"^/v1/invoices/(?P<invoice>[^/]+)$"), "invoice"),
    (
        "POST",
        re.compile(r"^/v1\.0/reports/partners/billing/reconciliation/billed/export$"),
        "export_billed",
    ),
    (
        "POST",
        re.compile(r"^/beta/reports/partners/billing/reconciliation/unbilled/export$"),
        "export_unbilled",
    ),
    ("GET", re.compile(r"^/v1\.0/reports/partners/billing/operations/(?P<op>[^/]+)$"), "operation"),
    ("GET", re.compile(r"^/v1\.0/reports/partners/billing/manifests/(?P<op>[^/]+)$"), "manifest"),
    ("GET", re.compile(r"^/blobs/(?P<op>[^/]+)/(?P<name>[^/]+)$"), "blob"),
]


class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out without a 40 ms delayed-ACK stall
    server_version = "PartnerCenterSimulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- plumbing ---------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.fault: str | None = None  # set by _guard: a fault that strikes while answering
        self.sim.requests.append((method, parts.path, dict(self.headers.items())))
        for route_method, pattern, name in ROUTES:
            match = pattern.match(parts.path)
            if match and route_method == method:
                try:
                    getattr(self, "_" + name)(**match.groupdict())
                except _Handled:
                    pass
                except _Reset:
                    # shutdown() really drops the connection; close() alone would wait for
                    # the handler's file objects and leave the client hanging.
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                return
        self._error(404, "404", f"no such resource {method} {parts.path}")

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("MS-RequestId", self.headers.get("MS-RequestId") or str(uuid.uuid4()))
        self.send_header(
            "MS-CorrelationId", self.headers.get("MS-CorrelationId") or str(uuid.uuid4())
        )
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.fault == "truncate" and len(body) > 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            raise _Reset
        self.wfile.write(body)

    def _json(
        self, document: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, dumps(document), headers)

    def _error(
        self, status: int, code: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(
            {"code": code, "description": description, "data": [], "source": "PartnerFD"},
            status,
            headers,
        )

    def _guard(self, audience: str, *, late_reset: bool = False) -> str | None:
        """Auth, throttling and faults for a data request; returns the fault to apply late.

        Raises ``_Handled`` once it has answered (401, 429, 5xx, a non-JSON body).

        ``late_reset``: a reset happens after the request was processed (a write
        whose answer is lost), not before.
        """
        scope = self.sim.token_scope(self.headers.get("Authorization"))
        if scope is None or (("graph" in scope.lower()) != (audience == "graph")):
            self._error(
                401,
                "401",
                "Unauthorized: the access token is missing, invalid, expired "
                "or for another audience",
                {"WWW-Authenticate": "OAuth realm=urn:cpsvc:cpid:simulator"},
            )
            raise _Handled
        if audience == "pc" and not self.sim.config.partner_center_app:
            self._error(
                403,
                "900150",
                "The supplied role does not have the rights to perform the requested operation",
            )
            raise _Handled
        if audience == "graph" and not self.sim.config.graph_billing_permission:
            message = "Either the signed-in user or the app lacks the PartnerBilling.Read.All role"
            self._json({"error": {"code": "Forbidden", "message": message}}, 403)
            raise _Handled
        if not self.sim.throttle.allow():
            seconds = self.sim.throttle.retry_after
            self._json(
                {
                    "statusCode": 429,
                    "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                },
                429,
                {"Retry-After": str(seconds)},
            )
            raise _Handled
        fault = self.sim.config.faults.next()
        self.fault = fault
        if fault == "5xx":
            self._error(503, "503", "The service is temporarily unavailable")
            raise _Handled
        if fault == "reset" and not late_reset:
            raise _Reset
        if fault == "badjson":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            raise _Handled
        if fault == "slow":
            time.sleep(self.sim.config.faults.slow_seconds)
        return fault

    def _collection(
        self,
        items: list[Any],
        next_link: dict[str, Any] | None,
        self_uri: str,
        token: str | None = None,
    ) -> dict[str, Any]:
        links: dict[str, Any] = {"self": {"uri": self_uri, "method": "GET", "headers": []}}
        document: dict[str, Any] = {"totalCount": len(items), "items": items, "links": links}
        if next_link:
            links["next"] = next_link
        if token:
            document["continuationToken"] = token
        document["attributes"] = {"objectType": "Collection"}
        return document

    def _capped(self, size: int) -> int:
        cap = self.sim.config.page_cap
        return min(size, cap) if cap > 0 else size

    def _seek_page(
        self, key: str, total: int, size: int, base_uri: str
    ) -> tuple[int, int, dict[str, Any] | None, str | None]:
        """Offset range of this seek page and the next link, from the continuation header."""
        size = self._capped(size)
        offset = 0
        if self.query.get("seekoperation", "").lower() == "next":
            token = self.headers.get("MS-ContinuationToken") or ""
            found = self.sim.read_continuation(token, key)
            if found is None:
                self._error(400, "400", "invalid or missing MS-ContinuationToken")
                raise _Handled
            offset = found
        end = min(total, offset + size)
        if end >= total:
            return offset, end, None, None
        token = self.sim.continuation(key, end)
        joiner = "&" if "?" in base_uri else "?"
        link = {
            "uri": f"{base_uri}{joiner}seekOperation=Next",
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": token}],
        }
        return offset, end, link, token

    # -- identity ---------------------------------------------------------------------------

    def _oidc(self, tenant: str) -> None:
        base = self.sim.base_url
        self._json(
            {
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{base}/{tenant}/v2.0",
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    def _token(self, tenant: str) -> None:
        form = {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}
        config = self.sim.config
        if tenant.lower() not in (config.tenant_id.lower(), self.sim.data.partner_tenant_id):
            self._aad_error(
                400,
                "invalid_request",
                f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud.",
            )
            return
        if form.get("client_id") != config.client_id:
            self._aad_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not "
                "found in the directory.",
            )
            return
        if not self._client_authenticated(form):
            self._aad_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                "the request is the client secret value, not the client secret ID.",
            )
            return
        scope = form.get("scope", "")
        self._json(
            {
                "token_type": "Bearer",
                "expires_in": config.token_lifetime,
                "ext_expires_in": config.token_lifetime,
                "access_token": self.sim.issue_token(scope),
            }
        )

    def _aad_error(self, status: int, error: str, description: str) -> None:
        self._json({"error": error, "error_description": description}, status)

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        config = self.sim.config
        if "client_secret" in form:
            return hmac.compare_digest(form["client_secret"], config.client_secret)
        assertion = form.get("client_assertion")
        if assertion and config.certificate_thumbprint:
            header = assertion.split(".")[0]
            decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
            x5t = decoded.get("x5t") or ""
            thumb = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex()
            return thumb.lower() == config.certificate_thumbprint.lower().replace(":", "")
        return False

    # -- customers and subscriptions -----------------------------------------------------------

    def _customers(self) -> None:
        self._guard("pc")
        size = int(self.query.get("size") or 40)
        customers = self.sim.data.customers
        start, end, link, token = self._seek_page(
            "customers", len(customers), size, f"/v1/customers?size={size}"
        )
        malformed = self.sim.data.malformed
        page = [c | malformed.get(f"customer:{c['id']}", {}) for c in customers[start:end]]
        self._json(self._collection(page, link, f"/v1/customers?size={size}", token))

    def _customer(self, customer: str) -> None:
        self._guard("pc")
        found = next((c for c in self.sim.data.customers if c["id"] == customer), None)
        if found is None:
            self._error(404, "600001", f"customer {customer} was not found")
            return
        # The single-customer resource adds the billing profile that the list leaves out.
        profile = found["companyProfile"]
        billing = {
            "id": found["commerceId"],
            "firstName": "Accounts",
            "lastName": "Payable",
            "email": f"ap@{profile['domain']}",
            "culture": "en-US",
            "language": "en",
            "companyName": profile["companyName"],
            "attributes": {"etag": found["commerceId"], "objectType": "CustomerBillingProfile"},
        }
        self._json({**found, "billingProfile": billing})

    def _subscriptions(self, customer: str) -> None:
        self._guard("pc")
        subs = self.sim.data.subscriptions.get(customer)
        refused = self.sim.config.refused_customers.get(customer)
        if refused == "":
            self._send(403, b"", content_type="application/json")
            return
        if refused is not None:
            description = {
                "20002": f"The partner has no commerce relationship with the customer {customer}",
            }.get(refused, "Access denied")
            self._error(403, refused, description)
            return
        if subs is None:
            self._error(404, "600001", f"customer {customer} was not found")
            return
        items = [_public(sub) for sub in subs]
        uri = f"/v1/customers/{customer}/subscriptions"
        self._json(self._collection(items, None, uri))

    def _subscription(self, customer: str, sub: str) -> None:
        self._guard("pc")
        found = self.sim.data.find_subscription(customer, sub)
        if found is None:
            self._error(404, "800002", f"subscription {sub} was not found")
            return
        self._json(_public(found))

    def _patch_subscription(self, customer: str, sub: str) -> None:
        request_id = self.headers.get("MS-RequestId") or ""
        replay = self.sim._replays.get(request_id) if request_id else None
        if replay is not None:  # a retried write: answer as the first time, change nothing
            self._send(replay[0], replay[1])
            return
        fault = self._guard("pc", late_reset=True)
        status, document = self._apply_patch(customer, sub)
        body = dumps(document)
        with self.sim._lock:
            lose = self.sim.config.lose_patch_answers > 0
            if lose:
                self.sim.config.lose_patch_answers -= 1
        if lose:
            raise _Reset  # applied; the answer is lost and the retry is not recognised
        if request_id:
            self.sim._replays[request_id] = (status, body)
        if fault in ("reset", "truncate"):
            raise _Reset  # the change happened, the answer was lost
        self._send(status, body)

    def _apply_patch(self, customer: str, sub: str) -> tuple[int, dict[str, Any]]:
        def error(status: int, code: str, text: str) -> tuple[int, dict[str, Any]]:
            return status, {"code": code, "description": text, "data": [], "source": "PartnerFD"}

        found = self.sim.data.find_subscription(customer, sub)
        if found is None:
            return error(404, "800002", f"subscription {sub} was not found")
        try:
            body = {k.lower(): v for k, v in json.loads(self.body or b"{}").items()}
        except ValueError:
            return error(400, "400", "request body is not JSON")
        wanted = str(body.get("status", "")).lower()
        if_match = self.headers.get("If-Match")
        etag = found["attributes"]["etag"]
        if if_match and if_match != etag:
            return error(412, "412", "the subscription was changed since it was read (etag)")
        current = found["status"]
        if current == "deleted":
            return error(
                400, "2011", f"Subscription with id {sub} and deleted status cannot be updated"
            )
        if wanted not in ("active", "suspended"):
            return error(400, "800096", "Cannot update the status for this subscription")
        renew = body.get("autorenewenabled")
        if wanted == current and isinstance(renew, bool) and renew != found["autoRenewEnabled"]:
            return self._patch_auto_renew(found, sub, renew)
        active_azure = [e for e in found.get("_azureEntitlements", ()) if e["status"] == "active"]
        if wanted == "suspended" and active_azure:
            return error(
                403,
                "900115",
                "Azure plan cannot be moved to suspended state since you "
                "have one or more Azure Subscriptions in the active state",
            )
        if wanted != current:
            found["status"] = wanted
            if wanted == "suspended":
                found["suspensionReasons"] = ["PartnerInitiated"]
                found["autoRenewEnabled"] = False  # NCE turns auto-renew off on suspension
            else:
                found["suspensionReasons"] = []
            version = int(found.get("_version", 0)) + 1
            found["_version"] = version
            found["attributes"] = {
                **found["attributes"],
                "etag": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sub}/{version}")),
            }
        return 200, _public(found)

    def _patch_auto_renew(
        self, found: dict[str, Any], sub: str, renew: bool
    ) -> tuple[int, dict[str, Any]]:
        """Auto-renew on or off (learn.microsoft.com "Update autorenew for ... new commerce
        subscriptions"): only a new-commerce term that is not suspended can change it."""
        if found["status"] != "active":
            return 400, {
                "code": "800091",
                "description": "Cannot update a subscription with suspended status",
                "data": [],
                "source": "PartnerFD",
            }
        if found.get("autoRenewEnabled") is None:  # usage-based (Azure plan): no term to renew
            return 400, {
                "code": "800096",
                "description": "Cannot update the auto renew for this subscription",
                "data": [],
                "source": "PartnerFD",
            }
        found["autoRenewEnabled"] = renew
        version = int(found.get("_version", 0)) + 1
        found["_version"] = version
        found["attributes"] = {
            **found["attributes"],
            "etag": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sub}/{version}")),
        }
        return 200, _public(found)

    # -- Azure plan entitlements (Partner Center REST "Azure spending") --------------------------

    def _azure_entitlements(self, customer: str, sub: str) -> None:
        self._guard("pc")
        found = self.sim.data.find_subscription(customer, sub)
        if found is None:
            self._error(404, "800002", f"subscription {sub} was not found")
            return
        items = [
            {**e, "attributes": {"objectType": "AzureEntitlement"}}
            for e in found.get("_azureEntitlements", ())
        ]
        uri = f"/v1/customers/{customer}/subscriptions/{sub}/azureEntitlements"
        self._json(self._collection(items, None, uri))

    def _azure_entitlement_action(
        self, customer: str, sub: str, entitlement: str, verb: str
    ) -> None:
        """Cancel or reactivate one Azure subscription of a plan: 202 Accepted, no body."""
        self._guard("pc")
        found = self.sim.data.find_subscription(customer, sub)
        entitlements = found.get("_azureEntitlements", ()) if found else ()
        target = next((e for e in entitlements if e["id"] == entitlement.lower()), None)
        if target is None:
            self._error(404, "800002", f"entitlement {entitlement} was not found")
            return
        target["status"] = "canceled" if verb.lower() == "cancel" else "active"
        self._send(202, b"", content_type="application/json")

    # -- invoices and line items ---------------------------------------------------------------

    def _invoices(self) -> None:
        self._guard("pc")
        size = int(self.query.get("size") or 200)
        offset = int(self.query.get("offset") or 0)
        newest_first = sorted(self.sim.data.invoices, key=lambda i: i.invoice_date, reverse=True)
        end = offset + self._capped(size)
        page = [self.sim.data.invoice_json(i) for i in newest_first[offset:end]]
        # Like Microsoft's invoice examples, links are relative and without /v1.
        more = None
        if end < len(newest_first):
            more = {"uri": f"/invoices?size={size}&offset={end}", "method": "GET", "headers": []}
        document = self._collection(page, more, f"/invoices?size={size}&offset={offset}")
        self._json(document)

    def _invoice(self, invoice: str) -> None:
        self._guard("pc")
        self._error(403, "600036", "GET /invoices/{id} requires an App+User (delegated) token")

    def _lineitems(self, invoice: str, provider: str | None = None) -> None:
        self._guard("pc")
        found = self.sim.data.invoice(invoice)
        if found is None:
            self._error(404, "10001", f"invoice {invoice} was not found")
            return
        provider = (provider or self.query.get("provider", "")).lower().replace("_", "")
        if provider not in ("onetime", "all"):
            self._json(self._collection([], None, f"/invoices/{invoice}/lineitems"))
            return
        if found.period_start >= V2_ONLY_FROM:
            # Since 2025-04-21 Microsoft serves these periods' new-commerce lines only
            # through the v2 export; the v1 endpoint refuses them.
            self._error(
                400,
                "400",
                "Invoice line items of billing periods from February 2024 are available "
                "only through the billed reconciliation export (Microsoft Graph v2)",
            )
            return
        size = min(2000, int(self.query.get("size") or 2000))
        base = f"/invoices/{invoice}/lineitems/onetime/billinglineitems?size={size}"
        start, end, link, token = self._seek_page(
            f"lines:{invoice}", self.sim.data.line_count(found), size, base
        )
        items = [self.sim.data.line_json(found, n) for n in range(start, end)]
        self._json(self._collection(items, link, base, token))

    def _unbilled(self) -> None:
        self._guard("pc")
        currency = (self.query.get("currencycode") or "USD").upper()
        period = (self.query.get("period") or "").lower()
        if period not in ("current", "previous"):
            self._error(400, "400", "period must be current or previous")
            return
        lines = self.sim.data.unbilled_lines(currency, period)
        size = min(2000, int(self.query.get("size") or 2000))
        base = (
            "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
            f"&currencycode={currency}&period={period}&size={size}"
        )
        key = f"unbilled:{currency}:{period}"
        start, end, link, token = self._seek_page(key, len(lines), size, base)
        self._json(self._collection(lines[start:end], link, base, token))

    # -- v2 exports --------------------------------------------------------------------------

    def _start_export(self, target: dict[str, Any]) -> None:
        self._guard("graph")
        operation = str(uuid.uuid4())
        failing = target.get("invoice") in self.sim.config.failing_exports
        with self.sim._lock:
            self.sim._operations[operation] = {
                **target,
                "ready_at": time.monotonic() + self.sim.config.export_seconds,
                "failed": failing,
            }
        location = f"{self.sim.base_url}/v1.0/reports/partners/billing/operations/{operation}"
        self._send(202, b"", {"Location": location})

    def _export_billed(self) -> None:
        if not self.sim.config.graph_billing_permission:
            self._guard("graph")  # answers 403
        body = json.loads(self.body or b"{}")
        invoice = self.sim.data.invoice(str(body.get("invoiceId")))
        if invoice is None:
            self._guard("graph")
            self._json({"error": {"code": "404", "message": "invoice not found"}}, 404)
            return
        if invoice.period_start < V2_ONLY_FROM:
            self._guard("graph")
            message = "billing periods before February 2024 are not available in the v2 export"
            self._json({"error": {"code": "BadRequest", "message": message}}, 400)
            return
        self._start_export({"invoice": invoice.id})

    def _export_unbilled(self) -> None:
        body = json.loads(self.body or b"{}")
        self._start_export({"unbilled": str(body.get("currencyCode", "USD")).upper()})

    def _operation(self, op: str) -> None:
        self._guard("graph")
        state = self.sim._operations.get(op)
        if state is None:
            self._json({"error": {"code": "404", "message": "operation not found"}}, 404)
            return
        stamp = {
            "id": op,
            "createdDateTime": "2026-01-01T00:00:00",
            "lastActionDateTime": "2026-01-01T00:00:01Z",
        }
        if time.monotonic() < state["ready_at"]:
            self._json(
                {
                    "@odata.type": "#microsoft.graph.partners.billing.runningOperation",
                    **stamp,
                    "status": "running",
                },
                headers={"Retry-After": str(self.sim.config.export_retry_after)},
            )
            return
        if state["failed"]:
            self._json(
                {
                    "@odata.type": "#microsoft.graph.partners.billing.failedOperation",
                    **stamp,
                    "status": "failed",
                    "error": {"message": "No data available", "code": "5000"},
                }
            )
            return
        self._json(
            {
                "@odata.type": "#microsoft.graph.partners.billing.exportSuccessOperation",
                **stamp,
                "status": "succeeded",
                "resourceLocation@odata.navigationLink": (
                    f"{self.sim.base_url}/v1.0/reports/partners/billing/manifests/{op}"
                ),
            }
        )

    def _manifest(self, op: str) -> None:
        self._guard("graph")
        state = self.sim._operations.get(op)
        if state is None:
            self._json({"error": {"code": "404", "message": "manifest not found"}}, 404)
            return
        count = self.sim.export_count(state)
        blobs = max(1, -(-count // self.sim.config.blob_lines))
        sas = f"sv=2021-08-06&se=2099-01-01T00%3A00%3A00Z&sr=d&sp=rl&sig={self.sim.sign(op)}"
        self._json(
            {
                "id": op,
                "schemaVersion": "1",
                "dataFormat": "compressedJSONLines",
                "createdDateTime": "2026-01-01T00:00:02Z",
                "eTag": self.sim.sign("etag" + op),
                "partnerTenantId": self.sim.data.partner_tenant_id,
                "rootDirectory": f"{self.sim.base_url}/blobs/{op}",
                "sasToken": sas,
                "partitionType": "Default",
                "blobCount": blobs,
                "blobs": [
                    {"name": f"part-{n:05d}-{op}.c000.json.gz", "partitionValue": "default"}
                    for n in range(blobs)
                ],
            }
        )

    def _blob(self, op: str, name: str) -> None:
        if self.headers.get("Authorization"):
            # Storage refuses a bearer token sent alongside a SAS; it must never be sent.
            self._send(
                400,
                b"<Error><Code>InvalidAuthenticationInfo</Code></Error>",
                content_type="application/xml",
            )
            return
        state = self.sim._operations.get(op)
        if state is None or self.query.get("sig") != self.sim.sign(op):
            self._send(
                403,
                b"<Error><Code>AuthenticationFailed</Code></Error>",
                content_type="application/xml",
            )
            return
        fault = self.sim.config.faults.next()
        blob = self.sim.export_blob(op, int(name.split("-")[1]))
        cut = blob.stat().st_size // 2 if fault in ("truncate", "reset") else None
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        with blob.open("rb") as stream:
            while chunk := stream.read(1 << 16):
                if cut is not None and sent + len(chunk) > cut:
                    self._chunk(chunk[: cut - sent])
                    self.wfile.flush()
                    raise _Reset
                self._chunk(chunk)
                sent += len(chunk)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


class _Handled(Exception):
    """An error answer was already sent."""


_PASCAL_SPECIAL = {
    "pcToBCExchangeRate": "PCToBCExchangeRate",
    "pcToBCExchangeRateDate": "PCToBCExchangeRateDate",
}


def _pascal(row: dict[str, Any]) -> dict[str, Any]:
    """A v1 line as a v2 export row: PascalCase keys, no ``attributes``."""
    return {
        _PASCAL_SPECIAL.get(key, key[:1].upper() + key[1:]): value
        for key, value in row.items()
        if key not in ("attributes", "invoiceLineItemType", "billingProvider")
    }


def _public(sub: dict[str, Any]) -> dict[str, Any]:
    """A stored subscription without the simulator's private markers."""
    return {k: v for k, v in sub.items() if not k.startswith("_")}
