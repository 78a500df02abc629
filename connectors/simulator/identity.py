"""Entra ID as the simulator plays it: OpenID discovery and the v2.0 token endpoint.

The token endpoint checks the tenant, the client id and the client's proof — a
secret, or a certificate assertion whose ``x5t`` names the configured thumbprint —
and answers AADSTS errors in Entra ID's shape. Tokens are opaque, per audience
(scope) and expire after the configured lifetime.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import threading
import time
from urllib.parse import parse_qs

from connectors.simulator.handler import BaseHandler, Route

__all__ = ["ROUTES", "IdentityRoutes", "Tokens"]

ROUTES: list[Route] = [
    ("GET", re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$"), "oidc"),
    ("POST", re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$"), "token"),
]


class Tokens:
    """The bearer tokens issued so far, each with its scope and expiry."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, scope: str, lifetime: float) -> str:
        """A new opaque bearer token for ``scope``, valid ``lifetime`` seconds."""
        token = "sim." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (scope, time.monotonic() + lifetime)
        return token

    def scope(self, header: str | None) -> str | None:
        """The scope of a valid, unexpired bearer token, else None."""
        if not header or not header.lower().startswith("bearer "):
            return None
        entry = self._tokens.get(header[7:].strip())
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def revoke(self) -> None:
        """Forget every issued token (as if they had all expired)."""
        with self._lock:
            self._tokens.clear()


class IdentityRoutes(BaseHandler):
    """OpenID discovery and the token endpoint MSAL calls."""

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
