"""Money: exact decimal numbers that always carry their ISO 4217 currency.

Amounts are created through :func:`D` (never from a float), combined only
within one currency (:class:`Amount` refuses mixed currencies), and rounded
half-up to the currency's minor unit only where the product's rules say so,
via :func:`round_money`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from reconciliation.errors import CurrencyMismatchError, DataError

__all__ = [
    "ZERO",
    "Amount",
    "D",
    "is_currency_code",
    "minor_unit",
    "money_text",
    "round_money",
    "tolerance",
]

ZERO = Decimal(0)

# ISO 4217 currencies whose minor unit is not 2 (the default). Partner Center
# bills in a few dozen currencies; the ones here are those where 2 is wrong.
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3,
    "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3,
    "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def D(value: str | int | Decimal) -> Decimal:
    """Return ``value`` as a Decimal; strings are parsed exactly, floats refused.

    Never use floating point in an accounting system: ``D(0.1)`` is a
    ``TypeError`` on purpose. Thousands separators (``1,234.50``) and
    surrounding spaces are accepted in strings.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"money must be a str, int or Decimal, not {type(value).__name__}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    text = value.strip().replace(",", "").replace("_", "")
    if not _NUMBER_RE.match(text):
        raise DataError(f"not a decimal number: {value!r}")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid forms
        raise DataError(f"not a decimal number: {value!r}") from exc
    return number


def is_currency_code(code: str) -> bool:
    """True when ``code`` has the shape of an ISO 4217 code (three capitals)."""
    return bool(_CURRENCY_RE.match(code))


def minor_unit(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


@functools.cache
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(number: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (``1.005 USD`` → ``1.01``)."""
    return number.quantize(_quantum(currency), rounding=ROUND_HALF_UP)


@functools.cache
def money_text(currency: str) -> Callable[[Decimal], str]:
    """A function writing amounts of ``currency`` as text, rounded like :func:`round_money`.

    For documents with hundreds of thousands of amounts: the currency is looked up once.
    """
    quantum = _quantum(currency)

    def text(number: Decimal) -> str:
        return str(number.quantize(quantum, rounding=ROUND_HALF_UP))

    return text


def tolerance(currency: str) -> Decimal:
    """Half of the currency's minor unit: differences below it are rounding, not errors."""
    return Decimal(1).scaleb(-minor_unit(currency)) / 2


@dataclass(frozen=True, slots=True)
class Amount:
    """An exact amount of money in one currency.

    Arithmetic between two amounts of different currencies raises
    :class:`CurrencyMismatchError`; amounts are never summed across currencies.
    """

    number: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.number, Decimal):
            raise TypeError(f"Amount.number must be a Decimal, not {type(self.number).__name__}")
        if not is_currency_code(self.currency):
            raise DataError(f"not an ISO 4217 currency code: {self.currency!r}")

    @classmethod
    def of(cls, number: str | int | Decimal, currency: str) -> Amount:
        """Build an amount from a string, int or Decimal number."""
        return cls(D(number), currency.strip().upper())

    @classmethod
    def zero(cls, currency: str) -> Amount:
        """Zero in ``currency``."""
        return cls(ZERO, currency)

    def _same(self, other: Amount) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency} and {other.currency} amounts"
            )

    def __add__(self, other: Amount) -> Amount:
        self._same(other)
        return Amount(self.number + other.number, self.currency)

    def __sub__(self, other: Amount) -> Amount:
        self._same(other)
        return Amount(self.number - other.number, self.currency)

    def __neg__(self) -> Amount:
        return Amount(-self.number, self.currency)

    def __lt__(self, other: Amount) -> bool:
        self._same(other)
        return self.number < other.number

    def __le__(self, other: Amount) -> bool:
        self._same(other)
        return self.number <= other.number

    def rounded(self) -> Amount:
        """This amount rounded half-up to the currency's minor unit."""
        return Amount(round_money(self.number, self.currency), self.currency)

    def __str__(self) -> str:
        return f"{self.rounded().number} {self.currency}"
