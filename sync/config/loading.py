"""Reading the config file: TOML in, one validated ``Settings`` out, or every problem at once.

Problems are named the way the user wrote the key (``[billing.overrides."x"]
markup_percent``); secrets come from the environment variables the file names.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError

from reconciliation.errors import ConfigError
from sync.config.access import DatabaseSettings, PartnerCenterSettings, ScheduleSettings
from sync.config.finance import BillingSettings, CollectionsSettings, PaymentsSettings
from sync.config.output import NotificationsSettings, ReportsSettings, StatementsSettings
from sync.config.values import Section, empty_table, toml_repr

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "Settings",
    "load_settings",
    "resolve_config_path",
]

DEFAULT_CONFIG_NAME = "pcsync.toml"
CONFIG_ENV = "PCSYNC_CONFIG"


class Settings(Section):
    """The whole validated configuration; ``source`` is the file it came from."""

    partner_center: PartnerCenterSettings
    database: DatabaseSettings = Field(default_factory=empty_table)
    schedule: ScheduleSettings = Field(default_factory=empty_table)
    payments: PaymentsSettings = Field(default_factory=empty_table)
    billing: BillingSettings = Field(default_factory=empty_table)
    collections: CollectionsSettings = Field(default_factory=empty_table)
    notifications: NotificationsSettings = Field(default_factory=empty_table)
    reports: ReportsSettings = Field(default_factory=empty_table)
    statements: StatementsSettings = Field(default_factory=empty_table)
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
    got = toml_repr(error.get("input"))
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
