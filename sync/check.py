"""``pcsync check``: a read-only preflight, each item with a remedy when it fails.

Run before the first sync and at the daemon's start. It reads; it never writes
to the database or starts an export. Each item is ``ok``, ``warn`` or ``fail``;
any ``fail`` makes the command exit 1.

The Graph billing probe reads an export operation that does not exist
(``GET /reports/partners/billing/operations/{id}``, which needs
``PartnerBilling.Read.All`` — learn.microsoft.com/graph/api/partners-billing-operation-get):
404 proves the permission without starting anything, 403 proves its absence.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import Engine

from connectors.partner_center import PartnerCenter
from connectors.partner_center.errors import ApiError, AuthenticationError, ConnectorError
from reconciliation.errors import PcsyncError
from sync.config import Settings
from sync.db.engine import ping
from sync.db.migrate import require_current
from sync.partner import connect

__all__ = [
    "GRANT_GRAPH_BILLING",
    "GRANT_PARTNER_CENTER_ROLE",
    "CheckItem",
    "Outcome",
    "run_checks",
]

SIGN_IN = "sign-in (tokens)"
CLOCK_SKEW_LIMIT = timedelta(minutes=5)  # tokens are refused past this skew
CERTIFICATE_WARNING = timedelta(days=30)

# What to grant, said the same way by the preflight and by a sync Microsoft refuses.
GRANT_PARTNER_CENTER_ROLE = (
    "in Partner Center, Account settings > App management, add the app (its client_id) "
    "and give it the Admin agent role"
)
GRANT_GRAPH_BILLING = (
    "in Entra ID, App registrations > the app > API permissions, add Microsoft Graph's "
    "application permission PartnerBilling.Read.All and grant admin consent"
)
_TRUST = (
    "the server's certificate is not trusted: set REQUESTS_CA_BUNDLE to a PEM file with "
    "the issuing CA (a proxy's, for instance)"
)
# What Entra ID's most common refusals mean (AADSTS codes, learn.microsoft.com
# "Microsoft Entra authentication and authorization error codes").
AADSTS_REMEDIES = {
    "AADSTS700016": "the client_id is not an app in this tenant: check [partner_center] "
    "client_id and tenant_id, or register the app",
    "AADSTS7000215": "the client secret is wrong: set the one from App registrations > "
    "Certificates & secrets (its value, not its id)",
    "AADSTS7000222": "the client secret has expired: create a new one and set it",
    "AADSTS700027": "the certificate does not match the app's: upload it to the app "
    "registration or fix certificate_thumbprint",
    "AADSTS90002": "the tenant does not exist: check [partner_center] tenant_id",
    "AADSTS500011": "the resource (scope) is not in this tenant: check the cloud and scopes",
}


class Outcome(enum.StrEnum):
    """How one item came out."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckItem:
    """One line of the preflight."""

    name: str
    outcome: Outcome
    detail: str
    remedy: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The item as ``pcsync check --json`` prints it."""
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "remedy": self.remedy,
        }


def run_checks(settings: Settings, engine: Engine) -> list[CheckItem]:
    """Every item, in order; a failed sign-in skips the calls that need its token."""
    items = [CheckItem("config", Outcome.OK, f"{settings.source} is valid")]
    items.append(_database(engine))
    items += _certificate(settings)
    try:
        pc = connect(settings.partner_center, max_retries=0)
    except PcsyncError as exc:
        items.append(_failure(SIGN_IN, exc))
        return items
    items += list(_calls(settings, pc))
    return items


def _database(engine: Engine) -> CheckItem:
    where = engine.url.render_as_string(hide_password=True)
    try:
        ping(engine)
        require_current(engine)
    except PcsyncError as exc:
        return CheckItem(
            "database", Outcome.FAIL, str(exc), "run `pcsync init`, or fix [database] url"
        )
    return CheckItem("database", Outcome.OK, f"{where} reachable, schema current")


def _certificate(settings: Settings) -> list[CheckItem]:
    path = settings.partner_center.certificate_path
    if path is None:
        return []
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        remedy = "set certificate_path to a PEM file holding the certificate and its key"
        return [CheckItem("certificate", Outcome.FAIL, f"{path}: {exc}", remedy)]
    left = certificate.not_valid_after_utc - datetime.now(UTC)
    expires = certificate.not_valid_after_utc.date().isoformat()
    renew = "upload a new certificate to the app registration, then switch certificate_path"
    if left <= timedelta(0):
        return [CheckItem("certificate", Outcome.FAIL, f"expired on {expires}", renew)]
    if left <= CERTIFICATE_WARNING:
        return [CheckItem("certificate", Outcome.WARN, f"expires on {expires}", renew)]
    return [CheckItem("certificate", Outcome.OK, f"valid until {expires}")]


def _calls(settings: Settings, pc: PartnerCenter) -> Iterator[CheckItem]:
    graph = settings.partner_center.v2_billing_exports
    sign_in = _probe(SIGN_IN, lambda: _sign_in(pc, graph=graph))
    yield sign_in
    if sign_in.outcome is Outcome.FAIL:
        return
    dates: list[str] = []
    yield _probe("customers and subscriptions", lambda: _customers(pc, dates))
    yield _probe("invoices", lambda: _invoices(pc, dates))
    if graph:
        yield _probe("billing export (Graph)", lambda: _graph_billing(pc))
    yield _clock(dates)


def _sign_in(pc: PartnerCenter, *, graph: bool) -> str:
    pc.sign_in(graph=graph)
    return "tokens issued for Partner Center" + (" and Microsoft Graph" if graph else "")


def _customers(pc: PartnerCenter, dates: list[str]) -> str:
    customer, date = pc.first_customer()
    dates.append(date)
    if customer is None:
        return "readable (no customers yet)"
    count = len(list(pc.subscriptions(customer)))
    return f"readable ({count} subscription(s) of customer {customer})"


def _invoices(pc: PartnerCenter, dates: list[str]) -> str:
    dates.append(pc.first_invoice_page())
    return "readable"


def _graph_billing(pc: PartnerCenter) -> str:
    pc.exports.probe()
    return "PartnerBilling.Read.All granted (probed by a read; no export started)"


def _clock(dates: list[str]) -> CheckItem:
    for text in dates:
        try:
            server = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            continue
        skew = abs(datetime.now(UTC) - server)
        if skew > CLOCK_SKEW_LIMIT:
            return CheckItem(
                "clock",
                Outcome.FAIL,
                f"{int(skew.total_seconds())} s off Partner Center's clock",
                "synchronise this machine's clock (NTP): tokens are refused past 5 minutes",
            )
        return CheckItem("clock", Outcome.OK, f"{int(skew.total_seconds())} s off Partner Center")
    return CheckItem("clock", Outcome.WARN, "no server time to compare with")


def _probe(name: str, call: Callable[[], str]) -> CheckItem:
    try:
        return CheckItem(name, Outcome.OK, call())
    except PcsyncError as exc:
        return _failure(name, exc)


def _failure(name: str, exc: PcsyncError) -> CheckItem:
    return CheckItem(name, Outcome.FAIL, str(exc), remedy_for(name, exc))


def remedy_for(name: str, exc: PcsyncError) -> str:
    """What to do about a failed item, from what failed and how."""
    text = str(exc)
    if "SSLError" in text or "CERTIFICATE_VERIFY" in text:
        return _TRUST
    if isinstance(exc, AuthenticationError):
        code = exc.code or next((w.rstrip(":") for w in text.split() if w.startswith("AADSTS")), "")
        if code in AADSTS_REMEDIES:
            return AADSTS_REMEDIES[code]
        if name == SIGN_IN:
            return "check tenant_id, client_id and the secret or certificate (see the AADSTS code)"
        return f"Partner Center rejected the app's token: {GRANT_PARTNER_CENTER_ROLE}"
    if isinstance(exc, ApiError) and exc.status == 403:
        return GRANT_GRAPH_BILLING if "Graph" in name else GRANT_PARTNER_CENTER_ROLE
    if isinstance(exc, ConnectorError):
        return "check the network path to the endpoint (proxy, firewall) and retry"
    return "see the message"
