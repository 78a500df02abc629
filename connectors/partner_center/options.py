"""What the connector needs to know, as plain values (the application builds them from config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

__all__ = ["CLOUDS", "ClientOptions", "Credentials", "Endpoints"]


@dataclass(frozen=True)
class Credentials:
    """The partner's Entra ID app: a client secret, or a PEM certificate and its thumbprint."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None


@dataclass(frozen=True)
class Endpoints:
    """Where Entra ID, Partner Center and Graph live, and the token audiences to ask for."""

    authority_host: str = "https://login.microsoftonline.com"
    api_base_url: str = "https://api.partnercenter.microsoft.com"
    graph_base_url: str = "https://graph.microsoft.com"
    partner_center_scope: str = "https://api.partnercenter.microsoft.com/.default"
    graph_scope: str = "https://graph.microsoft.com/.default"
    # v2 billing exports exist in the global cloud only.
    v2_billing_exports: bool = True


# Microsoft's clouds by the name the config file gives them; the defaults above are "public".
CLOUDS: Mapping[str, Endpoints] = MappingProxyType(
    {
        "public": Endpoints(),
        "usgov": Endpoints(
            authority_host="https://login.microsoftonline.us",
            api_base_url="https://api.partnercenter.microsoft.com",
            graph_base_url="https://graph.microsoft.us",
            partner_center_scope="https://api.partnercenter.microsoft.com/.default",
            graph_scope="https://graph.microsoft.us/.default",
            v2_billing_exports=False,
        ),
        "china": Endpoints(
            authority_host="https://login.chinacloudapi.cn",
            api_base_url="https://partner.partnercenterapi.microsoftonline.cn",
            graph_base_url="https://microsoftgraph.chinacloudapi.cn",
            partner_center_scope="https://partner.partnercenterapi.microsoftonline.cn/.default",
            graph_scope="https://microsoftgraph.chinacloudapi.cn/.default",
            v2_billing_exports=False,
        ),
    }
)


@dataclass(frozen=True)
class ClientOptions:
    """Behaviour of the HTTP client: timeouts, retries, rate ceiling, export deadline."""

    timeout_seconds: float = 60.0
    max_retries: int = 5
    requests_per_minute: int = 300
    export_deadline_seconds: float = 3600.0
    line_items_api: str = "auto"  # auto | v1 | v2
    token_cache_path: Path | None = None
    application_name: str = "pcsync"
    page_size: int = 2000
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
