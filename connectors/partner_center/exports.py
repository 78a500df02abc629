"""v2 billing exports on Microsoft Graph: request, poll, manifest, stream the blobs.

The flow (Graph ``reports/partners/billing``): POST an export → ``202`` with a
``Location`` to poll → poll until ``succeeded`` (honouring ``Retry-After``, no
fixed number of polls but an overall deadline) → read the manifest → download
each blob from ``{rootDirectory}/{name}?{sasToken}`` **without** the bearer
token → gzip JSON Lines, one line item per line, streamed in constant memory.
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from connectors.partner_center.errors import (
    BadResponseError,
    ExportError,
    NotFoundError,
    RetriableError,
)
from connectors.partner_center.http import HttpClient, display_url
from connectors.partner_center.prefetch import gzip_lines

__all__ = ["ExportManifest", "ExportRunner"]

log = logging.getLogger(__name__)

BILLING = "/v1.0/reports/partners/billing"


@dataclass(frozen=True)
class ExportManifest:
    """Where an export's files are: root directory, SAS token (a secret), blob names."""

    id: str
    root_directory: str
    sas_token: str
    blobs: tuple[str, ...]

    def blob_url(self, name: str) -> str:
        """Download URL of one blob, SAS included."""
        return f"{self.root_directory.rstrip('/')}/{name}?{self.sas_token.lstrip('?')}"

    def __repr__(self) -> str:  # the SAS token must never reach a log line
        return f"ExportManifest(id={self.id!r}, blobs={len(self.blobs)})"


class ExportRunner:
    """Runs one export from request to rows; the caller may resume at a known operation."""

    def __init__(
        self,
        http: HttpClient,
        graph_base_url: str,
        scope: str,
        *,
        deadline_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        default_poll_seconds: float = 10.0,
        download_retries: int = 3,
    ) -> None:
        self._http = http
        self._base = graph_base_url.rstrip("/")
        self.scope = scope
        self._deadline_seconds = deadline_seconds
        self._clock = clock
        self._sleep = sleep
        self._default_poll = default_poll_seconds
        self._download_retries = download_retries

    def probe(self) -> None:
        """Prove the billing-export permission without starting an export.

        Reads an operation that does not exist: 404 means the read was allowed
        (``GET /reports/partners/billing/operations/{id}`` needs PartnerBilling.Read.All,
        learn.microsoft.com/graph/api/partners-billing-operation-get); a 403 is raised.
        """
        url = f"{self._base}{BILLING}/operations/{uuid.uuid4()}"
        try:
            self._http.get_json(url, scope=self.scope, family="exports")
        except NotFoundError:
            return

    def request_billed(self, invoice_id: str) -> str:
        """Start a billed-reconciliation export of an invoice; return the operation URL."""
        return self._start(
            f"{self._base}{BILLING}/reconciliation/billed/export",
            {"invoiceId": invoice_id, "attributeSet": "full"},
        )

    def request_unbilled(self, currency: str, period: str) -> str:
        """Start an unbilled-reconciliation export (beta on Graph); return the operation URL."""
        return self._start(
            f"{self._base}/beta/reports/partners/billing/reconciliation/unbilled/export",
            {
                "currencyCode": currency,
                "attributeSet": "full",
                "billingPeriod": "last" if period == "previous" else "current",
            },
        )

    def _start(self, url: str, body: Mapping[str, Any]) -> str:
        reply = self._http.send_json("POST", url, body, scope=self.scope, family="exports")
        location = next((v for k, v in reply.headers.items() if k.lower() == "location"), None)
        if reply.status != 202 or not location:
            raise BadResponseError(
                f"POST {display_url(url)}: expected 202 with a Location header, got {reply.status}"
            )
        return str(location)

    def wait(self, operation_url: str) -> ExportManifest:
        """Poll the operation until it succeeds, then fetch its manifest."""
        started = self._clock()
        while True:
            reply = self._http.get_json(
                operation_url, scope=self.scope, family="exports", expect=_expect_status
            )
            body = reply.body
            status = str(body.get("status", "")).lower()
            if status == "succeeded":
                link = body.get("resourceLocation@odata.navigationLink") or body.get(
                    "resourceLocation"
                )
                if isinstance(link, Mapping):  # $expand=resourceLocation inlines the manifest
                    return _manifest(link)
                if not link:
                    raise BadResponseError(f"export {body.get('id')} succeeded without a manifest")
                manifest = self._http.get_json(
                    str(link), scope=self.scope, family="exports", expect=_expect_manifest
                )
                return _manifest(manifest.body)
            if status == "failed":
                error = body.get("error") or {}
                raise ExportError(
                    f"export operation {body.get('id')} failed: "
                    f"{error.get('code', '?')} {error.get('message', 'no message')}"
                )
            waited = self._clock() - started
            if waited > self._deadline_seconds:
                # Not resumed: the sync drops an operation that did not succeed, so an export
                # that always outlasts the deadline needs a longer one, not more runs.
                raise ExportError(
                    f"export operation {body.get('id')} still {status or 'pending'} after "
                    f"{int(waited)}s (export_deadline_minutes); given up: the next sync "
                    "requests a new export (raise export_deadline_minutes if Microsoft "
                    "needs longer)"
                )
            retry_after = reply.headers.get("Retry-After")
            delay = int(retry_after) if retry_after and retry_after.isdigit() else None
            self._sleep(delay if delay is not None else self._default_poll)

    def lines(self, manifest: ExportManifest, blob: str, skip: int = 0) -> Iterator[bytes]:
        """Stream the non-blank JSON lines of one blob, as bytes; a cut-off download restarts
        and skips what was read."""
        url = manifest.blob_url(blob)
        where = f"blob {blob}"
        done = skip
        for attempt in range(self._download_retries + 1):
            try:
                response = self._http.stream(url)
                with response:
                    index = 0
                    for line in gzip_lines(response.raw):
                        index += 1
                        if index <= done:
                            continue
                        done += 1
                        yield line
                return
            except (
                OSError,
                EOFError,
                zlib.error,
                urllib3.exceptions.HTTPError,
                RetriableError,
            ) as exc:
                if attempt >= self._download_retries:
                    raise BadResponseError(f"{where}: download kept failing ({exc})") from exc
                log.warning("%s: download cut off after %d rows; resuming", where, done)


def _expect_status(body: Any) -> None:
    if not isinstance(body, Mapping) or "status" not in body:
        raise ValueError("operation without a status")


def _expect_manifest(body: Any) -> None:
    if not isinstance(body, Mapping) or "rootDirectory" not in body or "blobs" not in body:
        raise ValueError("manifest without rootDirectory and blobs")


def _manifest(body: Mapping[str, Any]) -> ExportManifest:
    blobs = body["blobs"]
    if not isinstance(blobs, list):
        raise BadResponseError(f"export manifest {body.get('id', '')}: blobs is not a list")
    count = body.get("blobCount")
    if count is not None and count != len(blobs):
        # An export read from fewer blobs than it has would store part of an invoice.
        raise BadResponseError(
            f"export manifest {body.get('id', '')} lists {len(blobs)} blob(s) "
            f"but says blobCount {count}"
        )
    return ExportManifest(
        id=str(body.get("id", "")),
        root_directory=str(body["rootDirectory"]),
        sas_token=str(body.get("sasToken") or ""),
        blobs=tuple(str(blob["name"]) for blob in body["blobs"]),
    )
