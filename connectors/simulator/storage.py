"""Blob storage as the simulator plays it: an export's files, written once, served behind
a SAS token (a bearer token is refused), in chunks that a fault may cut short.

Storage serves an export as finished files, at the speed of a file server,
whatever it cost Microsoft to produce them. A billed invoice never changes,
so its blobs are written once and served to every export of it; the
unbilled period is a snapshot taken by each export.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.simulator.handler import BaseHandler, Route
from connectors.simulator.wire import Reset, dumps, pascal

if TYPE_CHECKING:
    from connectors.simulator.server import Simulator

__all__ = ["ROUTES", "BlobRoutes", "BlobStore"]

ROUTES: list[Route] = [
    ("GET", re.compile(r"^/blobs/(?P<op>[^/]+)/(?P<name>[^/]+)$"), "blob"),
]


class BlobStore:
    """The export files: an export's lines cut into blobs of ``blob_lines`` lines."""

    def __init__(self, sim: Simulator, directory: Path) -> None:
        self.sim = sim
        self.directory = directory
        self._lock = threading.Lock()

    def export_count(self, state: dict[str, Any]) -> int:
        """How many lines an export operation holds."""
        if "invoice" in state:
            invoice = self.sim.data.invoice(state["invoice"])
            assert invoice is not None
            return self.sim.data.line_count(invoice)
        return len(self.sim.data.unbilled_lines(state["unbilled"]))

    def export_blob(self, op: str, part: int) -> Path:
        """Blob ``part`` of export operation ``op``: a gzip JSON Lines file, written once."""
        return self.file(self.sim.operations[op], op, part)

    def prepare_invoice_export(self, invoice_id: str) -> None:
        """Write every blob of the invoice's export now, as storage holds them ahead of a client."""
        state = {"invoice": invoice_id}
        for part in range(max(1, -(-self.export_count(state) // self.sim.config.blob_lines))):
            self.file(state, "", part)

    def file(self, state: dict[str, Any], op: str, part: int) -> Path:
        """Blob ``part`` of an export of ``state`` (an invoice's, shared; else ``op``'s own)."""
        owner = f"op-{op}"
        if "invoice" in state:
            # An invoice's blobs are written once — unless a test changed what it serves.
            spoiled = sorted(
                (k, repr(v))
                for k, v in self.sim.data.malformed.items()
                if k.startswith(f"line:{state['invoice']}:")
            )
            owner = f"invoice-{self.sim.sign(state['invoice'] + repr(spoiled))}"
        path = self.directory / f"{owner}-{self.sim.config.blob_lines}-{part:05d}.json.gz"
        with self._lock:
            if not path.exists():
                self._write_blob(state, part, path)
        return path

    def _write_blob(self, state: dict[str, Any], part: int, path: Path) -> None:
        start = part * self.sim.config.blob_lines
        end = min(self.export_count(state), start + self.sim.config.blob_lines)
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

    def _export_rows(self, state: dict[str, Any], start: int, end: int) -> Iterator[dict[str, Any]]:
        if "invoice" in state:
            invoice = self.sim.data.invoice(state["invoice"])
            assert invoice is not None
            for position in range(start, end):
                yield pascal(self.sim.data.line_json(invoice, position))
        else:
            for row in self.sim.data.unbilled_lines(state["unbilled"])[start:end]:
                yield pascal(row)


class BlobRoutes(BaseHandler):
    """The blob endpoint: SAS-signed reads of an export's files."""

    def _blob(self, op: str, name: str) -> None:
        if self.headers.get("Authorization"):
            # Storage refuses a bearer token sent alongside a SAS; it must never be sent.
            self._send(
                400,
                b"<Error><Code>InvalidAuthenticationInfo</Code></Error>",
                content_type="application/xml",
            )
            return
        state = self.sim.operations.get(op)
        if state is None or self.query.get("sig") != self.sim.sign(op):
            self._send(
                403,
                b"<Error><Code>AuthenticationFailed</Code></Error>",
                content_type="application/xml",
            )
            return
        fault = self.sim.config.faults.next()
        blob = self.sim.blobs.export_blob(op, int(name.split("-")[1]))
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
                    raise Reset
                self._chunk(chunk)
                sent += len(chunk)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
