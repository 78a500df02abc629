"""What the simulated partner sells and in which currencies, and the small helpers its
data is built with (ids, ISO timestamps, months, minor units of money)."""

from __future__ import annotations

import calendar
import hashlib
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

__all__ = [
    "AZURE_PLAN",
    "COMPANY_WORDS",
    "CURRENCIES",
    "OFFERS",
    "PAYER_PROFILES",
    "V2_ONLY_FROM",
    "Currency",
    "amount",
    "guid",
    "iso",
    "link",
    "month_end",
    "month_start",
    "price_minor",
    "tax_minor",
]

# (product id, sku, name, USD price per seat and month)
OFFERS = [
    ("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", "6.00"),
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Standard", "12.50"),
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Premium", "22.00"),
    ("CFQ7TTC0LFLX", "0001", "Microsoft 365 E3", "36.00"),
    ("CFQ7TTC0LH16", "0001", "Exchange Online (Plan 1)", "4.00"),
    ("CFQ7TTC0RM8K", "0001", "Microsoft Teams Essentials", "4.00"),
    ("CFQ7TTC0HL8W", "0001", "Microsoft Defender for Business", "3.00"),
]
AZURE_PLAN = ("DZH318Z0BPS6", "0001", "Azure plan")


class Currency(NamedTuple):
    """How the simulated partner is billed in one currency."""

    rate: Decimal  # from USD, for list prices
    tax: Decimal  # the tax rate Microsoft charges on a subtotal
    exponent: int  # of the minor unit (-2: cents)
    symbol: str  # an invoice's ``currencySymbol``
    country: str  # a line's ``customerCountry``


# Every currency a test may bill an invoice or customer in. HRK, Croatia's kuna until
# 2023, is no longer an ISO 4217 currency, but invoices of those years are billed in it.
CURRENCIES = {
    "USD": Currency(Decimal("1"), Decimal("0.08"), -2, "$", "US"),
    "EUR": Currency(Decimal("0.92"), Decimal("0.19"), -2, "€", "DE"),
    "GBP": Currency(Decimal("0.79"), Decimal("0.20"), -2, "£", "GB"),
    "JPY": Currency(Decimal("150"), Decimal("0.10"), 0, "¥", "JP"),
    "HRK": Currency(Decimal("6.93"), Decimal("0.25"), -2, "kn", "HR"),
}
# Withdrawn currencies: invoices of past years stay in them, but nothing accrues in
# them now, so an unbilled request in one is refused as an invalid currency.
WITHDRAWN = frozenset({"HRK"})
PAYER_PROFILES = ["prompt", "early", "late", "partial", "never", "prompt", "overpay", "prompt"]
COMPANY_WORDS = [
    "Contoso", "Fabrikam", "Northwind", "Tailspin", "Litware", "Adatum", "Proseware",
    "Woodgrove", "Lucerne", "Wingtip", "Alpine", "Coho", "Fourth Coffee", "Margie's",
]  # fmt: skip


def guid(*parts: object) -> str:
    """A stable GUID made from ``parts``."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def iso(moment: date | datetime) -> str:
    """A date or moment as Microsoft writes it (UTC, ``Z``)."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{moment.isoformat()}T00:00:00Z"


def link(uri: str) -> dict[str, Any]:
    """A Partner Center ``links`` entry for a GET of ``uri``."""
    return {"uri": uri, "method": "GET", "headers": []}


def month_start(day: date, months_back: int) -> date:
    """The first day of the month ``months_back`` months before ``day``'s."""
    year, month = day.year, day.month - months_back
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, 1)


def month_end(start: date) -> date:
    """The last day of ``start``'s month."""
    return date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])


# New-commerce lines of billing periods from this date on exist only in the v2 export;
# earlier periods only on v1 (Microsoft's "Get invoice line items", Scenarios A-C).
V2_ONLY_FROM = date(2024, 2, 1)


def price_minor(usd: str, currency: str) -> int:
    """A USD list price in ``currency``, in integer minor units."""
    rate, exponent = CURRENCIES[currency].rate, CURRENCIES[currency].exponent
    price = (Decimal(usd) * rate).quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)
    return int(price.scaleb(-exponent))


def tax_minor(subtotal_minor: int, currency: str) -> int:
    """The tax on a subtotal, in integer minor units."""
    tax = (Decimal(subtotal_minor) * CURRENCIES[currency].tax).quantize(Decimal(1), ROUND_HALF_UP)
    return int(tax)


def amount(minor: int, currency: str) -> Decimal:
    """Integer minor units as the exact decimal amount."""
    return Decimal(minor).scaleb(CURRENCIES[currency].exponent)
