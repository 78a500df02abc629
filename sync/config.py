"""Settings: the TOML configuration, parsed and validated once at start-up.

``load_settings`` reads the file, checks every key and reports *all* problems
together, each naming its key (``[billing] markup_percent: expected a decimal
string like "10", got 10.5``). The result is a tree of frozen models; nothing
below the entry points reads the environment or the file again. Secrets come
only from the environment variable the file names, and are held as
``SecretStr`` so they never show in a repr or a log line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reconciliation.errors import ConfigError
from reconciliation.money import D
from sync.webhook import WebhookFormat

__all__ = [
    "CLOUDS",
    "DEFAULT_CONFIG_NAME",
    "BillingSettings",
    "CloudPreset",
    "CollectionOverride",
    "CollectionStage",
    "CollectionsSettings",
    "DatabaseSettings",
    "NamedPolicy",
    "NotificationsSettings",
    "PartnerCenterSettings",
    "PaymentsSettings",
    "ReportsSettings",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "load_settings",
    "resolve_config_path",
]

DEFAULT_CONFIG_NAME = "pcsync.toml"
CONFIG_ENV = "PCSYNC_CONFIG"


@dataclass(frozen=True)
class CloudPreset:
    """The endpoints and token audiences of one Microsoft cloud."""

    authority_host: str
    api_base_url: str
    graph_base_url: str
    partner_center_scope: str
    graph_scope: str
    v2_billing_exports: bool


CLOUDS: dict[str, CloudPreset] = {
    "public": CloudPreset(
        authority_host="https://login.microsoftonline.com",
        api_base_url="https://api.partnercenter.microsoft.com",
        graph_base_url="https://graph.microsoft.com",
        partner_center_scope="https://api.partnercenter.microsoft.com/.default",
        graph_scope="https://graph.microsoft.com/.default",
        v2_billing_exports=True,
    ),
    "usgov": CloudPreset(
        authority_host="https://login.microsoftonline.us",
        api_base_url="https://api.partnercenter.microsoft.com",
        graph_base_url="https://graph.microsoft.us",
        partner_center_scope="https://api.partnercenter.microsoft.com/.default",
        graph_scope="https://graph.microsoft.us/.default",
        v2_billing_exports=False,
    ),
    "china": CloudPreset(
        authority_host="https://login.chinacloudapi.cn",
        api_base_url="https://partner.partnercenterapi.microsoftonline.cn",
        graph_base_url="https://microsoftgraph.chinacloudapi.cn",
        partner_center_scope="https://partner.partnercenterapi.microsoftonline.cn/.default",
        graph_scope="https://microsoftgraph.chinacloudapi.cn/.default",
        v2_billing_exports=False,
    ),
}


# --- value types --------------------------------------------------------------


def _toml_repr(value: object) -> str:
    """Show a value the way it would be written in TOML."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _decimal(value: object) -> Decimal:
    # Floats are refused: a TOML 10.1 is a binary float, and money must be exact.
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError(
            "pcsync", 'expected a decimal string like "10", got {got}', {"got": _toml_repr(value)}
        )
    try:
        return D(value)
    except Exception as exc:
        raise PydanticCustomError(
            "pcsync", 'expected a decimal string like "10", got {got}', {"got": _toml_repr(value)}
        ) from exc


def _fraction(value: object) -> Decimal:
    # A share is not money; 0.25 written as a TOML float is taken at its shortest repr.
    number = _decimal(repr(value) if isinstance(value, float) else value)
    if not Decimal(0) <= number <= Decimal(1):
        raise PydanticCustomError(
            "pcsync", "expected a fraction between 0 and 1, got {got}", {"got": _toml_repr(value)}
        )
    return number


def _https_url(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("https://") or len(value) <= 8:
        raise PydanticCustomError(
            "pcsync",
            'expected an https URL like "https://example.com", got {got}',
            {"got": _toml_repr(value)},
        )
    return value.rstrip("/")


def _path(value: object, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise PydanticCustomError(
            "pcsync", "expected a file path string, got {got}", {"got": _toml_repr(value)}
        )
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


Money = Annotated[Decimal, BeforeValidator(_decimal)]
Fraction = Annotated[Decimal, BeforeValidator(_fraction)]
HttpsUrl = Annotated[str, BeforeValidator(_https_url)]
ConfigPath = Annotated[Path, BeforeValidator(_path)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
# Upper bounds where a number reaches a socket, a timer or a date: past them a typo,
# and past 64 bits an OverflowError at run time instead of a line at start-up.
TimeoutSeconds = Annotated[int, Field(gt=0, le=3600, strict=True)]
Port = Annotated[int, Field(gt=0, le=65535, strict=True)]
Text = Annotated[str, Field(strict=True)]
Name = Annotated[str, Field(strict=True, min_length=1)]


def _empty_table() -> Any:
    # Defaults are validated like file content (validate_default), so that relative
    # paths in them resolve against the config file's folder too.
    return {}


class _Section(BaseModel):
    # Scalars are strict (StrictInt, StrictStr…): a TOML "30" is not a number of days.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --- sections -----------------------------------------------------------------


class PartnerCenterSettings(_Section):
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
        for key in ("authority_host", "api_base_url", "graph_base_url"):
            filled.setdefault(key, getattr(preset, key))
        filled.setdefault("partner_center_scope", preset.partner_center_scope)
        filled.setdefault("graph_scope", preset.graph_scope)
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


def _check_private_key(path: Path) -> None:
    """MSAL signs with the PEM's private key: a file without one fails here, not mid-sync."""
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


class DatabaseSettings(_Section):
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
                {"got": _toml_repr(value)},
            ) from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise PydanticCustomError(
                "pcsync",
                "expected a sqlite:/// or postgresql+psycopg:// URL, got {got}",
                {"got": _toml_repr(url.get_backend_name())},
            )
        if url.get_driver_name() not in ("pysqlite", "psycopg"):
            # Any other driver is neither installed with pcsync nor tested with it.
            raise PydanticCustomError(
                "pcsync",
                "driver {got} is not supported: use sqlite:///PATH or postgresql+psycopg://",
                {"got": _toml_repr(url.get_driver_name())},
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


class ScheduleSettings(_Section):
    """When ``pcsync daemon`` runs each job (``[schedule]``, cron expressions)."""

    timezone: Text = "UTC"
    sync: Text = "0 */4 * * *"
    reconcile: Text = "30 5 * * *"
    collections: Text = ""
    # Writes and mails the reports after the reconcile above has stored today's result.
    report: Text = "45 5 * * *"
    misfire_grace_seconds: Annotated[int, Field(gt=0, le=604_800, strict=True)] = 3600
    # How often a standby daemon tries for the leader lock, and the leader checks it still
    # holds it; at most 15 so that a standby takes over within a minute (sync/leader.py).
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
                {"got": _toml_repr(value)},
            ) from exc
        return value

    @field_validator("sync", "reconcile", "collections", "report")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value == "":
            return value
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise PydanticCustomError(
                "pcsync",
                'expected a cron expression like "0 */4 * * *" (or "" to disable), got {got}',
                {"got": _toml_repr(value)},
            ) from exc
        return value


class PaymentColumns(_Section):
    """File headers holding each payment field (``[payments.columns]``)."""

    customer: Text = "customer"
    date: Text = "date"
    amount: Text = "amount"
    currency: Text = "currency"
    reference: Text = "reference"
    invoice: Text = "invoice"


class PaymentsSettings(_Section):
    """How payment files are read (``[payments]``).

    ``decimal_separator`` is the sign before an amount's decimals in text
    cells ("." or ","); the other one may only group thousands in threes.
    ``max_digits`` bounds the digits of one amount (1 to 28, Decimal's precision).
    """

    columns: PaymentColumns = Field(default_factory=_empty_table)
    date_format: Text = "%Y-%m-%d"
    decimal_separator: Literal[".", ","] = "."
    max_digits: Annotated[int, Field(ge=1, le=28, strict=True)] = 15


def _percent_up_to(limit: int) -> AfterValidator:
    def check(number: Decimal) -> Decimal:
        if not Decimal(0) <= number <= limit:
            raise PydanticCustomError(
                "pcsync",
                "expected a percentage from 0 to {limit}, got {got}",
                {"limit": limit, "got": _toml_repr(str(number))},
            )
        return number

    return AfterValidator(check)


# A negative markup would hide debts; past these bounds a typo, not a price.
MarkupPercent = Annotated[Decimal, BeforeValidator(_decimal), _percent_up_to(1000)]
TaxPercent = Annotated[Decimal, BeforeValidator(_decimal), _percent_up_to(100)]
TermsDays = Annotated[int, Field(ge=0, le=3660, strict=True)]


class BillingOverride(_Section):
    """Per-customer billing terms (``[billing.overrides."<customer id>"]``)."""

    markup_percent: MarkupPercent | None = None
    payment_terms_days: TermsDays | None = None
    tax_percent: TaxPercent | None = None


class BillingSettings(_Section):
    """How customer charges derive from Microsoft's bill (``[billing]``)."""

    markup_percent: MarkupPercent = Decimal(0)
    # The partner's own tax (VAT, sales tax) on its customer charges.
    tax_percent: TaxPercent = Decimal(0)
    payment_terms_days: TermsDays = 30
    microsoft_payment_terms_days: TermsDays = 60
    overrides: dict[str, BillingOverride] = {}


class CollectionStage(_Section):
    """One step of the collections policy (``[[collections.stages]]``)."""

    name: Name
    days_overdue: NonNegativeInt
    action: Literal["follow_up", "suspend"]
    min_amount: Money | None = None


def _default_stages() -> tuple[CollectionStage, ...]:
    return (
        CollectionStage(name="reminder", days_overdue=1, action="follow_up"),
        CollectionStage(name="final_notice", days_overdue=30, action="follow_up"),
        CollectionStage(name="suspend", days_overdue=60, action="suspend"),
    )


def _ordered_stages(stages: tuple[CollectionStage, ...]) -> tuple[CollectionStage, ...]:
    days = [stage.days_overdue for stage in stages]
    if days != sorted(days):
        raise PydanticCustomError(
            "pcsync", "stages must be ordered by days_overdue, got {days}", {"days": days}
        )
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise PydanticCustomError("pcsync", "stage names must be unique, got {n}", {"n": names})
    return stages


Stages = Annotated[tuple[CollectionStage, ...], AfterValidator(_ordered_stages)]


class NamedPolicy(_Section):
    """An alternative policy for some customers (``[collections.policies.<name>]``)."""

    min_overdue_amount: Money | None = None
    stages: Stages


class CollectionOverride(_Section):
    """One customer's exception (``[collections.overrides."<customer id>"]``)."""

    exempt: bool = False
    policy: Name | None = None


class CollectionsSettings(_Section):
    """The collections policy and its safety limits (``[collections]``)."""

    min_overdue_amount: Money = Decimal(0)
    exempt_customers: tuple[Name, ...] = ()
    max_suspend_customers: NonNegativeInt = 5
    max_suspend_share: Fraction = Decimal("0.25")
    # Customers pcsync keeps suspended at once, across applies (per-apply limits above).
    max_suspended_total: NonNegativeInt = 10
    approval_valid_days: Annotated[int, Field(gt=0, le=366, strict=True)] = 7
    terms_ending_days: Annotated[int, Field(ge=0, le=3660, strict=True)] = 30
    stages: Stages = Field(default_factory=_default_stages)
    policies: dict[str, NamedPolicy] = {}
    overrides: dict[str, CollectionOverride] = {}

    @model_validator(mode="after")
    def _known_policies(self) -> CollectionsSettings:
        for customer, override in self.overrides.items():
            if override.policy is not None and override.policy not in self.policies:
                known = ", ".join(sorted(self.policies)) or "none defined"
                raise PydanticCustomError(
                    "pcsync",
                    'overrides."{customer}" names policy "{name}", which no '
                    "[collections.policies.{name}] defines (defined: {known})",
                    {"customer": customer, "name": override.policy, "known": known},
                )
        return self

    def customer_ids(self) -> set[str]:
        """Every customer id the section names: exemptions and overrides."""
        return {c.lower() for c in self.exempt_customers} | {c.lower() for c in self.overrides}


class SmtpSettings(_Section):
    """The mail server notices go through (``[notifications.smtp]``); STARTTLS always."""

    host: Name
    port: Port = 587
    username_env: Text = ""
    password_env: Text = "PCSYNC_SMTP_PASSWORD"  # noqa: S105 - a variable name
    ca_file: ConfigPath | None = None
    timeout_seconds: TimeoutSeconds = 30


def _instructions(value: str) -> str:
    # Published to customers as is: a stray escape or NUL would reach their terminal or mail.
    value = value.replace("\r\n", "\n")
    bad = sorted({f"U+{ord(c):04X}" for c in value if ord(c) < 32 and c not in "\n\t"})
    if bad or "\x7f" in value:
        raise PydanticCustomError(
            "pcsync",
            "expected text (line breaks allowed), got control character(s) {bad}",
            {"bad": ", ".join(bad or ["U+007F"])},
        )
    return value.strip()


PaymentInstructions = Annotated[
    str, Field(strict=True, max_length=4000), AfterValidator(_instructions)
]


class NotificationsSettings(_Section):
    """Customer notices and the run summary webhook (``[notifications]``)."""

    from_address: Text = "billing@example.com"
    reply_to: Text = ""
    sender_name: Text = "Accounts receivable"
    templates_dir: ConfigPath | None = None
    out_dir: ConfigPath = Path("notices")
    # Webhook URLs carry their own credential, so the URL comes from the environment.
    webhook_url_env: Text = ""
    # The payload's shape: what the chat tool behind the webhook renders (sync/webhook.py).
    webhook_format: WebhookFormat = WebhookFormat.TEXT
    recipients: dict[str, Name] = {}
    # How customers pay (bank details, a payment link), quoted in the published policy.
    payment_instructions: PaymentInstructions = ""
    smtp: SmtpSettings | None = None
    webhook_url: SecretStr | None = Field(default=None, exclude=True)  # from webhook_url_env


def _mail_address(value: str) -> str:
    problem = ""
    if value != value.strip() or any(ord(c) < 33 or ord(c) == 127 for c in value):
        problem = "it holds a space, a control character or a line break"
    else:
        try:
            parsed = Address(addr_spec=value)
        except (ValueError, IndexError, HeaderParseError):
            problem = "not one e-mail address"
        else:
            if not parsed.username or "." not in parsed.domain:
                problem = "not one e-mail address (no local part, or no domain with a dot)"
    if problem:
        raise PydanticCustomError(
            "pcsync",
            'expected one e-mail address like "finance@example.com", got {got}: {problem}',
            {"got": _toml_repr(value.encode("unicode_escape").decode()), "problem": problem},
        )
    return value


MailAddress = Annotated[str, Field(strict=True, max_length=254), AfterValidator(_mail_address)]


class ReportsSettings(_Section):
    """Where and how reports are written (``[reports]``)."""

    out_dir: ConfigPath = Path("reports")
    formats: tuple[Literal["xlsx", "html", "csv", "json"], ...] = ("xlsx", "html", "csv", "json")
    title: Text = "Partner Center billing"
    # Finance addresses the daemon's report job mails the day's report to (HTML body,
    # XLSX attached), through [notifications.smtp]; empty: the reports are only written.
    email_to: tuple[MailAddress, ...] = ()


class StatementsSettings(_Section):
    """Customer statements (``[statements]``): whose name they are in, what they show."""

    # Printed at the top of every statement; addresses and contacts keep their line breaks.
    partner_name: Annotated[str, Field(strict=True, min_length=1, max_length=200)] = (
        "Your CSP partner"
    )
    address: PaymentInstructions = ""
    contact: PaymentInstructions = ""
    # Name each charge by its Microsoft invoice number too (else by its billing period only).
    show_microsoft_invoice: bool = Field(default=False, strict=True)
    out_dir: ConfigPath = Path("statements")


class Settings(_Section):
    """The whole validated configuration; ``source`` is the file it came from."""

    partner_center: PartnerCenterSettings
    database: DatabaseSettings = Field(default_factory=_empty_table)
    schedule: ScheduleSettings = Field(default_factory=_empty_table)
    payments: PaymentsSettings = Field(default_factory=_empty_table)
    billing: BillingSettings = Field(default_factory=_empty_table)
    collections: CollectionsSettings = Field(default_factory=_empty_table)
    notifications: NotificationsSettings = Field(default_factory=_empty_table)
    reports: ReportsSettings = Field(default_factory=_empty_table)
    statements: StatementsSettings = Field(default_factory=_empty_table)
    source: Path | None = Field(default=None, exclude=True)


# --- loading ------------------------------------------------------------------


def resolve_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """The config file to use: ``--config``, else ``$PCSYNC_CONFIG``, else ``./pcsync.toml``."""
    return Path(explicit or environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def _where(loc: tuple[int | str, ...]) -> str:
    """Name a key the way the user wrote it: ``[billing.overrides."x"] markup_percent``."""
    suffix = ""
    if len(loc) > 1 and isinstance(loc[-1], int):
        suffix = f" #{loc[-1] + 1}"
        loc = loc[:-1]
    return _where_key(tuple(str(p) for p in loc)) + suffix


def _where_key(parts: tuple[str, ...]) -> str:
    if len(parts) == 1:
        return f"[{parts[0]}]"
    if len(parts) >= 3 and parts[:2] == ("collections", "stages") and parts[2].isdigit():
        rest = " ".join(parts[3:])
        return f"[[collections.stages]] #{int(parts[2]) + 1}" + (f" {rest}" if rest else "")
    keyed = {
        ("billing", "overrides"),
        ("collections", "overrides"),
        ("notifications", "recipients"),
    }
    if len(parts) >= 3 and parts[:2] in keyed:
        rest = " ".join(parts[3:])
        return f'[{parts[0]}.{parts[1]}."{parts[2]}"]' + (f" {rest}" if rest else "")
    if len(parts) >= 5 and parts[:2] == ("collections", "policies") and parts[3] == "stages":
        rest = " ".join(parts[5:])
        where = f"[[collections.policies.{parts[2]}.stages]] #{int(parts[4]) + 1}"
        return where + (f" {rest}" if rest else "")
    section = ".".join(parts[:-1])
    return f"[{section}] {parts[-1]}"


def _describe(error: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    got = _toml_repr(error.get("input"))
    if kind == "missing":
        text = "required key is missing"
    elif kind == "extra_forbidden":
        text = (
            "unknown section (see config.example.toml)"
            if len(loc) == 1
            else "unknown key (see config.example.toml)"
        )
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        text = f"expected an integer, got {got}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        text = f"expected a number {error['msg'].removeprefix('Input should be ')}, got {got}"
    elif kind == "string_type":
        text = f"expected a string, got {got}"
    elif kind == "string_too_short":
        text = "expected a non-empty string"
    elif kind == "bool_type":
        text = f"expected true or false, got {got}"
    elif kind in ("literal_error", "enum"):
        text = f"expected {error['ctx']['expected']}, got {got}"
    elif kind in ("tuple_type", "list_type"):
        text = f"expected an array, got {got}"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        text = f"expected a table, got {got}"
    else:
        text = str(error["msg"])
    return f"{_where(loc)}: {text}" if loc else text


def _config_error(path: Path, problems: list[str]) -> ConfigError:
    count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
    return ConfigError(f"config file {path}: {count}: " + "; ".join(problems), tuple(problems))


def _with_webhook(path: Path, settings: Settings, environ: Mapping[str, str]) -> Settings:
    notifications = settings.notifications
    name = notifications.webhook_url_env
    url = environ.get(name, "") if name else ""
    if not url:
        return settings
    if not url.startswith("https://") or len(url) <= 8:
        # Say what is wrong without echoing the URL: it is a credential.
        raise _config_error(
            path,
            [f"[notifications] webhook_url_env: ${name} must hold an https URL"],
        )
    notifications = notifications.model_copy(update={"webhook_url": SecretStr(url)})
    return settings.model_copy(update={"notifications": notifications})


def _utf8_text(path: Path, data: bytes) -> str:
    """The file's text; a UTF-8 byte order mark (Notepad writes one) is allowed."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
        what = "UTF-16 text" if utf16 else f"not text (byte {exc.start + 1} is not UTF-8)"
        raise ConfigError(
            f"config file {path}: {what}; save it as UTF-8 TOML (see config.example.toml)"
        ) from exc


# Where requests looks for trusted CAs; a path that is not there fails every request.
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _check_ca_bundle(environ: Mapping[str, str]) -> None:
    for name in _CA_BUNDLE_VARIABLES:
        value = environ.get(name)
        if value and not Path(value).exists():
            raise ConfigError(
                f"environment variable {name}: no such file {value}; point it at a PEM file "
                "of trusted CA certificates, or unset it to use the system's"
            )


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file at ``path``; raise ConfigError listing every problem.

    ``environ`` supplies the secret named by ``client_secret_env`` (defaults to
    the process environment; tests pass their own).
    """
    environ = os.environ if environ is None else environ
    try:
        text = _utf8_text(path, path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file {path} not found: copy config.example.toml to {path}, "
            f"or pass --config / set {CONFIG_ENV}"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from exc

    problems: list[str] = []
    for section_name, key, instead in (
        ("partner_center", "client_secret", "client_secret_env"),
        ("notifications", "webhook_url", "webhook_url_env"),
    ):
        section = raw.get(section_name)
        if isinstance(section, dict) and key in section:
            raw[section_name] = {k: v for k, v in section.items() if k != key}
            problems.append(
                f"[{section_name}] {key}: secrets never live in the file; remove it and "
                f"set the environment variable named by {instead}"
            )
    try:
        settings = Settings.model_validate(
            {**raw, "source": path.resolve()},
            context={"base_dir": path.resolve().parent},
        )
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors(include_url=False))
        raise _config_error(path, problems) from exc
    if problems:
        raise _config_error(path, problems)
    settings = _with_webhook(path, settings, environ)
    _check_ca_bundle(environ)
    partner_center = settings.partner_center
    secret = environ.get(partner_center.client_secret_env)
    if secret:
        partner_center = partner_center.model_copy(update={"client_secret": SecretStr(secret)})
        settings = settings.model_copy(update={"partner_center": partner_center})
    return settings
