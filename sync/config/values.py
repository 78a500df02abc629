"""The value types of the configuration: what a key may hold and in which range.

Each type is an ``Annotated`` pydantic type whose validator raises a one-line
``pcsync`` error naming what was expected and what the file held, written the
way TOML writes it (``toml_repr``). Money is exact: a TOML float is refused.
"""

from __future__ import annotations

from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from reconciliation.money import D, is_iso_currency

__all__ = [
    "ConfigPath",
    "CurrencyCode",
    "Fraction",
    "HttpsUrl",
    "MailAddress",
    "MarkupPercent",
    "Money",
    "Name",
    "NonNegativeInt",
    "PaymentInstructions",
    "Port",
    "PositiveInt",
    "Section",
    "TaxPercent",
    "TermsDays",
    "Text",
    "TimeoutSeconds",
    "empty_table",
    "toml_repr",
]


def toml_repr(value: object) -> str:
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
            "pcsync", 'expected a decimal string like "10", got {got}', {"got": toml_repr(value)}
        )
    try:
        return D(value)
    except Exception as exc:
        raise PydanticCustomError(
            "pcsync", 'expected a decimal string like "10", got {got}', {"got": toml_repr(value)}
        ) from exc


def _fraction(value: object) -> Decimal:
    # A share is not money; 0.25 written as a TOML float is taken at its shortest repr.
    number = _decimal(repr(value) if isinstance(value, float) else value)
    if not Decimal(0) <= number <= Decimal(1):
        raise PydanticCustomError(
            "pcsync", "expected a fraction between 0 and 1, got {got}", {"got": toml_repr(value)}
        )
    return number


def _https_url(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("https://") or len(value) <= 8:
        raise PydanticCustomError(
            "pcsync",
            'expected an https URL like "https://example.com", got {got}',
            {"got": toml_repr(value)},
        )
    return value.rstrip("/")


def _path(value: object, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise PydanticCustomError(
            "pcsync", "expected a file path string, got {got}", {"got": toml_repr(value)}
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


def empty_table() -> Any:
    # Defaults are validated like file content (validate_default), so that relative
    # paths in them resolve against the config file's folder too.
    return {}


class Section(BaseModel):
    # Scalars are strict (StrictInt, StrictStr…): a TOML "30" is not a number of days.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def percent_up_to(limit: int) -> AfterValidator:
    def check(number: Decimal) -> Decimal:
        if not Decimal(0) <= number <= limit:
            raise PydanticCustomError(
                "pcsync",
                "expected a percentage from 0 to {limit}, got {got}",
                {"limit": limit, "got": toml_repr(str(number))},
            )
        return number

    return AfterValidator(check)


# A negative markup would hide debts; past these bounds a typo, not a price.
MarkupPercent = Annotated[Decimal, BeforeValidator(_decimal), percent_up_to(1000)]
TaxPercent = Annotated[Decimal, BeforeValidator(_decimal), percent_up_to(100)]
TermsDays = Annotated[int, Field(ge=0, le=3660, strict=True)]


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
            {"got": toml_repr(value.encode("unicode_escape").decode()), "problem": problem},
        )
    return value


MailAddress = Annotated[str, Field(strict=True, max_length=254), AfterValidator(_mail_address)]


def _currency_code(value: str) -> str:
    code = value.strip().upper()
    if not is_iso_currency(code):
        raise PydanticCustomError(
            "pcsync",
            'expected an ISO 4217 currency code like "USD", got {got}',
            {"got": toml_repr(value)},
        )
    return code


CurrencyCode = Annotated[str, Field(strict=True), AfterValidator(_currency_code)]
