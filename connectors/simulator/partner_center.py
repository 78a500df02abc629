"""Partner Center v1 as the simulator serves it: customers, subscriptions and their
changes (PATCH with ``If-Match`` and Microsoft's error codes), Azure plan entitlements."""

from __future__ import annotations

import json
import re
from typing import Any

from connectors.simulator.data import new_version, public
from connectors.simulator.handler import Route
from connectors.simulator.paging import SeekPaged
from connectors.simulator.wire import Reset, collection, dumps, pc_error

__all__ = ["ROUTES", "PartnerCenterRoutes"]

ROUTES: list[Route] = [
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
]


class PartnerCenterRoutes(SeekPaged):
    """Customers, subscriptions and Azure entitlements."""

    def _customers(self) -> None:
        self._guard("pc")
        size = int(self.query.get("size") or 40)
        unlisted = self.sim.data.unlisted
        customers = [c for c in self.sim.data.customers if c["id"] not in unlisted]
        start, end, link, token = self._seek_page(
            "customers", len(customers), size, f"/v1/customers?size={size}"
        )
        malformed = self.sim.data.malformed
        page = [c | malformed.get(f"customer:{c['id']}", {}) for c in customers[start:end]]
        self._json(collection(page, link, f"/v1/customers?size={size}", token))

    def _customer(self, customer: str) -> None:
        self._guard("pc")
        if customer in self.sim.data.unlisted and self._refuse_customer(customer):
            return
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
        if self._refuse_customer(customer):
            return
        if subs is None:
            self._error(404, "600001", f"customer {customer} was not found")
            return
        items = [public(sub) for sub in subs]
        uri = f"/v1/customers/{customer}/subscriptions"
        self._json(collection(items, None, uri))

    def _subscription(self, customer: str, sub: str) -> None:
        self._guard("pc")
        if customer in self.sim.data.unlisted and self._refuse_customer(customer):
            return
        found = self.sim.data.find_subscription(customer, sub)
        if found is None or sub in self.sim.config.unreadable_subscriptions:
            self._error(404, "800002", f"subscription {sub} was not found")
            return
        self._json(public(found))

    def _patch_subscription(self, customer: str, sub: str) -> None:
        request_id = self.headers.get("MS-RequestId") or ""
        replay = self.sim.replays.get(request_id) if request_id else None
        if replay is not None:  # a retried write: answer as the first time, change nothing
            self._send(replay[0], replay[1])
            return
        fault = self._guard("pc", late_reset=True)
        status, document = self._apply_patch(customer, sub)
        body = dumps(document)
        if self._answer_lost():
            raise Reset  # applied; the answer is lost and the retry is not recognised
        if request_id:
            self.sim.replays[request_id] = (status, body)
        if fault in ("reset", "truncate"):
            raise Reset  # the change happened, the answer was lost
        self._send(status, body)

    def _apply_patch(self, customer: str, sub: str) -> tuple[int, dict[str, Any]]:
        def error(status: int, code: str, text: str) -> tuple[int, dict[str, Any]]:
            return status, pc_error(code, text)

        if customer in self.sim.data.unlisted:
            return error(
                403,
                "20002",
                f"The partner has no commerce relationship with the customer {customer}",
            )
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
            return self._patch_auto_renew(found, renew)
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
            new_version(found)
        return 200, public(found)

    def _patch_auto_renew(self, found: dict[str, Any], renew: bool) -> tuple[int, dict[str, Any]]:
        """Auto-renew on or off (learn.microsoft.com "Update autorenew for ... new commerce
        subscriptions"): only a new-commerce term that is not suspended can change it."""
        if found["status"] != "active":
            return 400, pc_error("800091", "Cannot update a subscription with suspended status")
        if found.get("autoRenewEnabled") is None:  # usage-based (Azure plan): no term to renew
            return 400, pc_error("800096", "Cannot update the auto renew for this subscription")
        found["autoRenewEnabled"] = renew
        new_version(found)
        return 200, public(found)

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
        self._json(collection(items, None, uri))

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
