"""Build the Partner Center connector from the validated settings."""

from __future__ import annotations

import time
from collections.abc import Callable

from connectors.partner_center import ClientOptions, Credentials, PartnerCenter
from reconciliation.errors import ConfigError
from sync import __version__
from sync.config import PartnerCenterSettings

__all__ = ["connect"]


def connect(
    settings: PartnerCenterSettings,
    *,
    correlation_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_retries: int | None = None,
) -> PartnerCenter:
    """A connector for the configured tenant, app and endpoints (``max_retries`` overrides
    the configured retries: a preflight wants an answer, not a minute of backoff)."""
    pem = None
    if settings.certificate_path is not None:
        try:
            pem = settings.certificate_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"[partner_center] certificate_path: cannot read {settings.certificate_path} "
                f"({exc.strerror})"
            ) from exc
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    if pem is None and secret is None:
        raise ConfigError(
            f"[partner_center] no credential: set the environment variable "
            f"{settings.client_secret_env}, or certificate_path and certificate_thumbprint"
        )
    return PartnerCenter.connect(
        Credentials(
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            client_secret=secret,
            certificate_pem=pem,
            certificate_thumbprint=settings.certificate_thumbprint,
        ),
        settings.endpoints(),
        ClientOptions(
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries if max_retries is None else max_retries,
            requests_per_minute=settings.requests_per_minute,
            export_deadline_seconds=settings.export_deadline_minutes * 60,
            line_items_api=settings.line_items_api,
            token_cache_path=settings.token_cache_path,
            application_name=f"pcsync/{__version__}",
        ),
        correlation_id=correlation_id,
        sleep=sleep,
    )
