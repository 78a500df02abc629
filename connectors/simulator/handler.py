"""The request plumbing every API surface of the simulator shares.

Each surface (``identity``, ``partner_center``, ``billing``, ``exports``,
``storage``) is a mixin of ``BaseHandler`` declaring its ``ROUTES``: a method,
a path pattern and the name of the method that answers (``_<name>``, called
with the pattern's groups). ``server`` joins them into one handler class.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from connectors.simulator.wire import Handled, Reset, dumps, pc_error

if TYPE_CHECKING:
    from connectors.simulator.server import Simulator

__all__ = ["BaseHandler", "Route"]

log = logging.getLogger(__name__)

Route = tuple[str, re.Pattern[str], str]


class BaseHandler(BaseHTTPRequestHandler):
    """Parses a request, finds its route and sends answers in Microsoft's shapes."""

    sim: Simulator
    routes: ClassVar[list[Route]] = []
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out without a 40 ms delayed-ACK stall
    server_version = "PartnerCenterSimulator/1.0"

    query: dict[str, str]
    body: bytes
    fault: str | None  # set by _guard: a fault that strikes while answering

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.fault = None
        self.sim.requests.append((method, parts.path, dict(self.headers.items())))
        for route_method, pattern, name in self.routes:
            match = pattern.match(parts.path)
            if match and route_method == method:
                try:
                    getattr(self, "_" + name)(**match.groupdict())
                except Handled:
                    pass
                except Reset:
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
            raise Reset
        self.wfile.write(body)

    def _json(
        self, document: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, dumps(document), headers)

    def _error(
        self, status: int, code: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(pc_error(code, description), status, headers)
