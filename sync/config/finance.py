"""How money is read and owed: ``[payments]``, ``[billing]`` and ``[collections]``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from sync.config.values import (
    CurrencyCode,
    Fraction,
    MarkupPercent,
    Money,
    Name,
    NonNegativeInt,
    Section,
    TaxPercent,
    TermsDays,
    Text,
    empty_table,
    toml_repr,
)

__all__ = [
    "BillingOverride",
    "BillingSettings",
    "CollectionOverride",
    "CollectionStage",
    "CollectionsSettings",
    "NamedPolicy",
    "PaymentColumns",
    "PaymentsSettings",
]


class PaymentColumns(Section):
    """File headers holding each payment field (``[payments.columns]``)."""

    customer: Text = "customer"
    date: Text = "date"
    amount: Text = "amount"
    currency: Text = "currency"
    reference: Text = "reference"
    invoice: Text = "invoice"


# Every directive Python's strptime reads (strftime writes more, like %e or %-d, that
# strptime then refuses on every row).
_STRPTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")
_DIRECTIVE = re.compile("%(.?)")
_NEEDED = (("year", "%Y or %y", "Yy"), ("month", "%m, %b or %B", "mbB"), ("day", "%d", "d"))
# Days whose day, month and year all differ, so a swapped or missing part reads back wrong.
_ROUND_TRIP_DAYS = (date(2026, 11, 21), date(2026, 2, 3), date(1999, 12, 31))


def _date_format_problem(value: str) -> str:
    """What is wrong with a payment ``date_format``, or "" when it reads back what it writes."""
    directives = _DIRECTIVE.findall(value)
    unknown = [d for d in directives if d not in _STRPTIME_DIRECTIVES]
    if unknown == [""]:
        return "it ends in a lone % (a percent sign is written %%)"
    if unknown:
        return f"%{unknown[0]} is not a directive strptime reads"
    missing = [
        f"no {what} ({how})" for what, how, letters in _NEEDED if not set(letters) & set(directives)
    ]
    if missing:
        return "it has " + ", ".join(missing)
    for day in _ROUND_TRIP_DAYS:
        # As a UTC datetime, so that %z and %Z write something strptime can read back.
        text = datetime.combine(day, time(), UTC).strftime(value)
        try:
            back = datetime.strptime(text, value).date()
        except (ValueError, re.error):  # re.error: a directive repeated (%m/%m)
            return f"{day.isoformat()} is written {text!r}, which strptime cannot read back"
        if back != day:
            return f"{day.isoformat()} is written {text!r} and read back as {back.isoformat()}"
    return ""


def _date_format(value: str) -> str:
    problem = _date_format_problem(value)
    if problem:
        # A line break or control character in the setting must not break the error's line.
        shown = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode() for c in value
        )
        raise PydanticCustomError(
            "pcsync",
            'expected a strftime date format with a year, a month and a day, like "%d/%m/%Y" '
            'or "%Y-%m-%d", got {got}: {problem}',
            {"got": toml_repr(shown), "problem": problem},
        )
    return value


# Checked at load: a wrong format would otherwise refuse every row of every file.
DateFormat = Annotated[str, Field(strict=True), AfterValidator(_date_format)]


class PaymentsSettings(Section):
    """How payment files are read (``[payments]``).

    ``decimal_separator`` is the sign before an amount's decimals in text
    cells ("." or ","); the other one may only group thousands in threes.
    ``max_digits`` bounds the digits of one amount (1 to 28, Decimal's precision).
    """

    columns: PaymentColumns = Field(default_factory=empty_table)
    date_format: DateFormat = "%Y-%m-%d"
    decimal_separator: Literal[".", ","] = "."
    max_digits: Annotated[int, Field(ge=1, le=28, strict=True)] = 15


class BillingOverride(Section):
    """Per-customer billing terms (``[billing.overrides."<customer id>"]``)."""

    markup_percent: MarkupPercent | None = None
    payment_terms_days: TermsDays | None = None
    tax_percent: TaxPercent | None = None


class BillingSettings(Section):
    """How customer charges derive from Microsoft's bill (``[billing]``)."""

    markup_percent: MarkupPercent = Decimal(0)
    # The partner's own tax (VAT, sales tax) on its customer charges.
    tax_percent: TaxPercent = Decimal(0)
    payment_terms_days: TermsDays = 30
    microsoft_payment_terms_days: TermsDays = 60
    overrides: dict[str, BillingOverride] = Field(default_factory=dict)
    # Invoice id → the difference (Microsoft's total minus its lines) finance has checked
    # and accepts; any other difference keeps the invoice missing (sync/jobs/lines.py).
    accepted_differences: dict[str, Money] = Field(default_factory=dict)
    # Currencies Microsoft bills the partner in. The sync reads unbilled charges in each,
    # besides those of its invoices; Microsoft lists no currencies before a first invoice.
    currencies: tuple[CurrencyCode, ...] = ()


class CollectionStage(Section):
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


class NamedPolicy(Section):
    """An alternative policy for some customers (``[collections.policies.<name>]``)."""

    min_overdue_amount: Money | None = None
    stages: Stages


class CollectionOverride(Section):
    """One customer's exception (``[collections.overrides."<customer id>"]``)."""

    exempt: bool = False
    policy: Name | None = None


class CollectionsSettings(Section):
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
    policies: dict[str, NamedPolicy] = Field(default_factory=dict)
    overrides: dict[str, CollectionOverride] = Field(default_factory=dict)

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
