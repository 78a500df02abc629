"""Tokens from Entra ID through MSAL: one confidential client per process, cached on disk.

The client credential is a secret or a certificate. MSAL's token cache is kept
in a file only its owner can read (0600) and reused across runs, so a sync
every few hours asks Entra ID for a token only when the last one expired.
For an authority host that is not one of Microsoft's (a proxy, a test server)
instance discovery — which would call Microsoft's public host — is off.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from connectors.partner_center.errors import AuthenticationError
from connectors.partner_center.options import Credentials, Endpoints
from reconciliation.errors import ConfigError

__all__ = ["TokenProvider"]

log = logging.getLogger(__name__)

_MICROSOFT_AUTHORITY_HOSTS = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
    "login.microsoft.com",
    "login.windows.net",
    "login.partner.microsoftonline.cn",
}


def _credential(credentials: Credentials) -> str | dict[str, str]:
    if credentials.certificate_pem and credentials.certificate_thumbprint:
        return {
            "private_key": credentials.certificate_pem,
            "thumbprint": credentials.certificate_thumbprint,
        }
    if credentials.client_secret:
        return credentials.client_secret
    raise ConfigError(
        "[partner_center] no credential: set the environment variable named by "
        "client_secret_env, or certificate_path and certificate_thumbprint"
    )


class TokenProvider:
    """Access tokens for the Partner Center and Graph scopes, from one MSAL client."""

    def __init__(
        self,
        credentials: Credentials,
        endpoints: Endpoints,
        *,
        session: requests.Session,
        cache_path: Path | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        host = urlsplit(endpoints.authority_host).hostname or ""
        self._cache = msal.SerializableTokenCache()
        self._cache_path = cache_path
        self._lock = threading.Lock()
        self._load_cache()
        try:
            self._app = msal.ConfidentialClientApplication(
                credentials.client_id,
                client_credential=_credential(credentials),
                authority=f"{endpoints.authority_host.rstrip('/')}/{credentials.tenant_id}",
                token_cache=self._cache,
                http_client=session,
                timeout=timeout_seconds,
                instance_discovery=host.lower() in _MICROSOFT_AUTHORITY_HOSTS,
            )
        except ValueError as exc:
            # MSAL raises ValueError when the authority's discovery document is unreachable
            # or the tenant does not exist; its text names the URL, never the secret.
            raise AuthenticationError(
                f"cannot reach the sign-in authority {endpoints.authority_host} for tenant "
                f"{credentials.tenant_id}: {str(exc).splitlines()[0][:300]}"
            ) from exc
        except requests.RequestException as exc:
            raise AuthenticationError(
                f"cannot reach the sign-in authority {endpoints.authority_host}: "
                f"{type(exc).__name__}"
            ) from exc

    def token(self, scope: str, *, fresh: bool = False) -> str:
        """A bearer token for ``scope``; ``fresh`` drops the cached one first (after a 401)."""
        with self._lock:
            if fresh:
                stale = list(
                    self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=[scope])
                )
                for item in stale:
                    self._cache.remove_at(item)
            try:
                result: dict[str, Any] = self._app.acquire_token_for_client(scopes=[scope])
            except requests.RequestException as exc:
                raise AuthenticationError(
                    f"token request for {scope} failed: {type(exc).__name__}"
                ) from exc
            if "access_token" not in result:
                raise _auth_error(result, scope)
            if result.get("token_source") == "identity_provider":
                log.debug("new token for %s, expires in %ss", scope, result.get("expires_in"))
            self._save_cache()
            return str(result["access_token"])

    def _load_cache(self) -> None:
        if self._cache_path and self._cache_path.is_file():
            try:
                self._cache.deserialize(self._cache_path.read_text(encoding="utf-8"))
            except ValueError:
                log.warning("token cache %s is unreadable; starting a new one", self._cache_path)

    def _save_cache(self) -> None:
        if not self._cache_path or not self._cache.has_state_changed:
            return
        self._cache_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._cache_path.with_name(self._cache_path.name + ".tmp")
        # Created 0600 before anything is written, so the tokens are never world-readable.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self._cache.serialize())
        os.chmod(temporary, 0o600)
        os.replace(temporary, self._cache_path)
        self._cache.has_state_changed = False


def _auth_error(result: dict[str, Any], scope: str) -> AuthenticationError:
    """Turn MSAL's error dict into one line with the AADSTS code and Microsoft's words."""
    description = str(result.get("error_description") or result.get("error") or "unknown error")
    first_line = description.splitlines()[0].strip()
    code = first_line.split(":", 1)[0] if first_line.startswith("AADSTS") else None
    error = str(result.get("error") or "error")
    return AuthenticationError(
        f"Entra ID refused a token for {scope} ({error}): {first_line[:400]}", code=code
    )
