"""The built-in Partner Center: an HTTPS server speaking the real API's shapes.

It serves, on loopback and over TLS with a certificate it makes at start, one
module per API surface:

* ``identity``: the endpoints MSAL calls (OpenID discovery, the v2.0 token endpoint
  checking client id and secret or certificate assertion);
* ``partner_center``: customers (seek paging), subscriptions (GET, PATCH with
  ``If-Match`` and Microsoft's error codes), Azure plan entitlements;
* ``billing``: invoices (offset paging), billed and unbilled line items (seek paging);
* ``exports``: Graph v2 billing exports: POST → 202 ``Location`` → poll
  (``Retry-After``) → manifest;
* ``storage``: the exports' gzip JSON Lines blobs behind a SAS token, refusing bearer tokens;
* ``faults``: refusals, throttling (429 + ``Retry-After``), deterministic faults (5xx,
  resets, truncated bodies, slow answers, non-JSON bodies), short pages, lost answers.

The world served is ``data.Dataset``. The simulator is the outside world: it
imports nothing from the client or the application (an import-linter contract).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from connectors.simulator import billing, exports, identity, partner_center, storage
from connectors.simulator.data import Dataset, Scale
from connectors.simulator.faults import FaultPlan, Throttle
from connectors.simulator.tls import TlsFiles, make_tls_files

__all__ = ["Handler", "Simulator", "SimulatorConfig"]


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
    # Subscriptions the single-subscription GET answers 404 for while their customer's
    # listing still lists them: a read that fails for now, not a subscription gone.
    unreadable_subscriptions: set[str] = field(default_factory=set)
    # The next this-many subscription PATCHes are applied, then the connection drops with
    # no answer, and a retry is not recognised by its request id: it meets the new etag
    # (412), as a client whose PATCH timed out after Microsoft applied it does.
    lose_patch_answers: int = 0
    # False: the app lacks Graph's PartnerBilling.Read.All, so billing exports answer 403.
    graph_billing_permission: bool = True
    # False: the app is not in Partner Center's App management (or lacks its role): every
    # Partner Center call answers 403 in Microsoft's error shape.
    partner_center_app: bool = True


class Handler(
    identity.IdentityRoutes,
    partner_center.PartnerCenterRoutes,
    billing.BillingRoutes,
    exports.ExportRoutes,
    storage.BlobRoutes,
):
    """Every API surface in one request handler."""

    routes = (
        identity.ROUTES + partner_center.ROUTES + billing.ROUTES + exports.ROUTES + storage.ROUTES
    )


class Simulator:
    """Owns the data and the running server; also usable in-process as a pytest fixture."""

    def __init__(self, config: SimulatorConfig, state_dir: Path) -> None:
        self.config = config
        self.data = Dataset(config.scale, config.anchor)
        self.tls: TlsFiles = make_tls_files(state_dir)
        self._signing_key = secrets.token_bytes(32)
        self.tokens = identity.Tokens()
        self.operations: dict[str, dict[str, Any]] = {}  # export operations by id
        self.replays: dict[str, tuple[int, bytes]] = {}  # write answers by MS-RequestId
        self.lock = threading.Lock()
        self.blob_dir = state_dir / "blobs"
        self.blobs = storage.BlobStore(self, self.blob_dir)
        self.throttle = Throttle(
            config.rate_limit, config.retry_after, config.throttle_window_seconds
        )
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; return the base URL."""
        handler = type("Handler", (Handler,), {"sim": self})
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
        self.data.set_status(customer_id, subscription_id, status)

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
        return self.tokens.issue(scope, self.config.token_lifetime)

    def token_scope(self, header: str | None) -> str | None:
        """The scope of a valid, unexpired bearer token, else None."""
        return self.tokens.scope(header)

    def revoke_tokens(self) -> None:
        """Forget every issued token (as if they had all expired)."""
        self.tokens.revoke()

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
        return self.blobs.export_count(state)

    def export_blob(self, op: str, part: int) -> Path:
        """Blob ``part`` of export operation ``op``: a gzip JSON Lines file, written once."""
        return self.blobs.export_blob(op, part)

    def prepare_invoice_export(self, invoice_id: str) -> None:
        """Write every blob of the invoice's export now, as storage holds them ahead of a client."""
        self.blobs.prepare_invoice_export(invoice_id)
