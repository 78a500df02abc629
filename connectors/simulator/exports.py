"""Graph's v2 billing exports as the simulator serves them.

POST → 202 with ``Location`` → poll the operation (``Retry-After`` while it runs)
→ the manifest, naming gzip JSON Lines blobs in storage behind a SAS token.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from connectors.simulator.catalog import V2_ONLY_FROM, WITHDRAWN
from connectors.simulator.faults import Guarded
from connectors.simulator.handler import Route

__all__ = ["ROUTES", "ExportRoutes"]

ROUTES: list[Route] = [
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
]


class ExportRoutes(Guarded):
    """Start an export, poll its operation, read its manifest."""

    def _start_export(self, target: dict[str, Any]) -> None:
        self._guard("graph")
        operation = str(uuid.uuid4())
        failing = target.get("invoice") in self.sim.config.failing_exports
        with self.sim.lock:
            self.sim.operations[operation] = {
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
        currency = str(body.get("currencyCode", "USD")).upper()
        if currency in WITHDRAWN:
            self._guard("graph")
            message = f"currencyCode {currency} is not a billing currency"
            self._json({"error": {"code": "BadRequest", "message": message}}, 400)
            return
        self._start_export({"unbilled": currency})

    def _operation(self, op: str) -> None:
        self._guard("graph")
        state = self.sim.operations.get(op)
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
        state = self.sim.operations.get(op)
        if state is None:
            self._json({"error": {"code": "404", "message": "manifest not found"}}, 404)
            return
        count = self.sim.blobs.export_count(state)
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
