"""The daemon's HTTP endpoint: Prometheus ``/metrics`` and an orchestrator's ``/healthz``.

One small threaded WSGI server serves both. ``/healthz`` answers 200 while the
database answers a read, and 503 only when it does not: everything else — the
age of the last successful sync, whether this daemon leads or stands by, the
audit chain's state as the daemon last proved it — is reported in the JSON body
as information. A failed sync or a broken audit chain is an alert (webhook,
metrics), not a reason for an orchestrator to restart a daemon that works.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from sync.audit import ChainCheck
from sync.db.models import Run
from sync.runtime.logs import redact
from sync.runtime.runs import RunStatus

__all__ = ["AuditState", "HealthServer", "health_report"]

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class AuditState:
    """The audit chain as this daemon last verified it (``check`` None: not yet)."""

    check: ChainCheck | None = None
    verified_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``audit`` part of ``/healthz``."""
        if self.check is None or self.verified_at is None:
            return {"state": "unverified", "verified_at": None}
        return {
            "state": "ok" if self.check.ok else "broken",
            "entries": self.check.count,
            "problem": self.check.problem,
            "verified_at": self.verified_at.isoformat(),
        }


def health_report(engine: Engine, role: str, audit: AuditState) -> tuple[int, dict[str, Any]]:
    """The status code and body of ``/healthz``: 503 only when the database cannot be read."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {"role": role, "audit": audit.as_json()}
    query = select(func.max(Run.finished_at)).where(
        Run.kind == "sync", Run.status == RunStatus.SUCCEEDED.value
    )
    try:
        with engine.connect() as connection:
            last: datetime | None = connection.execute(query).scalar()
    except SQLAlchemyError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return 503, {"status": "unavailable", "database": redact(first), **body}
    if last is not None and last.tzinfo is None:  # SQLite hands back what it stored
        last = last.replace(tzinfo=UTC)
    body["last_sync"] = (
        None
        if last is None
        else {"succeeded_at": last.isoformat(), "age_seconds": int((now - last).total_seconds())}
    )
    return 200, {"status": "ok", "database": "ok", **body}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds up the daemon's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # orchestrators probe often
        pass


class HealthServer:
    """``/metrics`` and ``/healthz`` on (host, port), served from a background thread."""

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        report: Callable[[], tuple[int, dict[str, Any]]],
    ) -> None:
        self._metrics = make_wsgi_app(registry)
        self._report = report
        host, port = address
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(
            host, port, self._route, server_class=server_class, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pcsync-http", daemon=True
        )

    def start(self) -> None:
        """Serve until ``stop``."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            status, body = self._report()
            payload = json.dumps(body).encode()
            reason = "OK" if status == 200 else "Service Unavailable"
            start_response(
                f"{status} {reason}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        if path in ("/metrics", "/"):  # "/" as the former metrics-only server did
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]
