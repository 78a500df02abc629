"""Where pcsync reaches and when it runs: ``[partner_center]``, ``[database]``, ``[schedule]``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from connectors.partner_center.options import CLOUDS, Endpoints
from sync.config.values import ConfigPath, HttpsUrl, Name, Section, Text, TimeoutSeconds, toml_repr

__all__ = ["DatabaseSettings", "PartnerCenterSettings", "ScheduleSettings"]

# The keys of [partner_center] that a cloud preset fills in when the file leaves them out.
_ENDPOINT_KEYS = (
    "authority_host",
    "api_base_url",
    "graph_base_url",
    "partner_center_scope",
    "graph_scope",
)


class PartnerCenterSettings(Section):
    """How to reach and authenticate to Partner Center (``[partner_center]``)."""

    tenant_id: Name
    client_id: Name
    client_secret_env: Text = "PCSYNC_CLIENT_SECRET"  # noqa: S105 - a variable name
    certificate_path: ConfigPath | None = None
    certificate_thumbprint: Text | None = None
    cloud: Literal["public", "usgov", "china"] = "public"
    authority_host: HttpsUrl = ""
    api_base_url: HttpsUrl = ""
    graph_base_url: HttpsUrl = ""
    partner_center_scope: Text = ""
    graph_scope: Text = ""
    line_items_api: Literal["auto", "v1", "v2"] = "auto"
    token_cache_path: ConfigPath = Path("pcsync-token-cache.json")
    timeout_seconds: TimeoutSeconds = 60
    max_retries: Annotated[int, Field(ge=0, le=100, strict=True)] = 5
    requests_per_minute: Annotated[int, Field(gt=0, le=1_000_000, strict=True)] = 300
    export_deadline_minutes: Annotated[int, Field(gt=0, le=10_080, strict=True)] = 60
    # Filled from the environment variable named by client_secret_env, never from the file.
    client_secret: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _apply_cloud_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # An unknown cloud is reported on its own key; public fills in meanwhile.
        preset = CLOUDS.get(str(data.get("cloud", "public")), CLOUDS["public"])
        filled = dict(data)
        for key in _ENDPOINT_KEYS:
            filled.setdefault(key, getattr(preset, key))
        return filled

    @model_validator(mode="after")
    def _certificate_complete(self) -> PartnerCenterSettings:
        if self.certificate_path is not None:
            if not self.certificate_thumbprint:
                raise PydanticCustomError(
                    "pcsync", "certificate_path is set but certificate_thumbprint is missing"
                )
            if not self.certificate_path.is_file():
                raise PydanticCustomError(
                    "pcsync",
                    "certificate_path: no such file {path}",
                    {"path": str(self.certificate_path)},
                )
            _check_private_key(self.certificate_path)
        return self

    @property
    def v2_billing_exports(self) -> bool:
        """Whether this cloud offers the v2 (Graph) billing exports."""
        return CLOUDS[self.cloud].v2_billing_exports

    def endpoints(self) -> Endpoints:
        """Where the connector goes: the cloud's preset, with the URLs and scopes set here."""
        return replace(CLOUDS[self.cloud], **{key: getattr(self, key) for key in _ENDPOINT_KEYS})


def _check_private_key(path: Path) -> None:
    """MSAL signs with the PEM's private key: a file without one fails here, not mid-sync."""
    # Loaded here, for a certificate only: ~7 MB of every sync's memory otherwise.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise PydanticCustomError(
            "pcsync",
            "certificate_path: cannot read {path} ({reason})",
            {"path": str(path), "reason": exc.strerror or type(exc).__name__},
        ) from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # ValueError: not PEM, or no key in it; TypeError: the key is encrypted.
        raise PydanticCustomError(
            "pcsync",
            "certificate_path: {path} holds no unencrypted PEM private key ({reason}); export "
            "the certificate with its key as PEM, e.g. openssl pkcs12 -in app.pfx -nodes",
            {"path": str(path), "reason": str(exc).split(".")[0][:120]},
        ) from exc


class DatabaseSettings(Section):
    """Where pcsync keeps its data (``[database]``)."""

    url: Text = "sqlite:///pcsync.db"

    @field_validator("url", mode="after")
    @classmethod
    def _supported_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise PydanticCustomError(
                "pcsync",
                'expected a database URL like "sqlite:///pcsync.db", got {got}',
                {"got": toml_repr(value)},
            ) from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise PydanticCustomError(
                "pcsync",
                "expected a sqlite:/// or postgresql+psycopg:// URL, got {got}",
                {"got": toml_repr(url.get_backend_name())},
            )
        if url.get_driver_name() not in ("pysqlite", "psycopg"):
            # Any other driver is neither installed with pcsync nor tested with it.
            raise PydanticCustomError(
                "pcsync",
                "driver {got} is not supported: use sqlite:///PATH or postgresql+psycopg://",
                {"got": toml_repr(url.get_driver_name())},
            )
        base = (info.context or {}).get("base_dir")
        database = url.database
        if url.get_backend_name() == "sqlite" and database and database != ":memory:":
            path = Path(database).expanduser()
            if not path.is_absolute() and base is not None:
                # Relative to the config file, so the daemon finds the same database
                # whatever its working directory.
                url = url.set(database=str(Path(base) / path))
        return url.render_as_string(hide_password=False)


class ScheduleSettings(Section):
    """When ``pcsync daemon`` runs each job (``[schedule]``, cron expressions)."""

    timezone: Text = "UTC"
    sync: Text = "0 */4 * * *"
    reconcile: Text = "30 5 * * *"
    collections: Text = ""
    # Writes and mails the reports after the reconcile above has stored today's result.
    report: Text = "45 5 * * *"
    misfire_grace_seconds: Annotated[int, Field(gt=0, le=604_800, strict=True)] = 3600
    # How often a standby daemon tries for the leader lock, and the leader checks it still
    # holds it; at most 15 so that a standby takes over within a minute (sync/runtime/leader.py).
    standby_poll_seconds: Annotated[int, Field(gt=0, le=15, strict=True)] = 10

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PydanticCustomError(
                "pcsync",
                'expected an IANA time zone like "Europe/Berlin", got {got}',
                {"got": toml_repr(value)},
            ) from exc
        return value

    @field_validator("sync", "reconcile", "collections", "report")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value == "":
            return value
        from sync.config.cron import crontab_trigger

        try:
            crontab_trigger(value, "UTC")
        except ValueError as exc:
            raise PydanticCustomError(
                "pcsync",
                'expected a cron expression like "0 */4 * * *" (or "" to disable), '
                "got {got}: {why}",
                {"got": toml_repr(value), "why": str(exc)},
            ) from exc
        return value
