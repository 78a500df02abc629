"""Money: exact decimal numbers that always carry their ISO 4217 currency.

Amounts are created through :func:`D` (never from a float), travel beside their
currency in every record and result (sums are kept per currency), and are rounded
half-up to the currency's minor unit only where the product's rules say so,
via :func:`round_money`.

Amounts people write (a bank's or a finance system's payment export) are read
by :func:`parse_amount` alone, under explicit rules; :func:`D` reads only the
plain decimal text machines write and never guesses what a separator means.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from reconciliation.currencies import MINOR_UNITS, SYMBOLS, WITHDRAWN
from reconciliation.errors import DataError, InputError

__all__ = [
    "ZERO",
    "D",
    "is_currency_code",
    "is_iso_currency",
    "minor_unit",
    "money_text",
    "parse_amount",
    "round_money",
    "tolerance",
]

ZERO = Decimal(0)

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def D(value: str | int | Decimal) -> Decimal:
    """Return ``value`` as a Decimal; strings are parsed exactly, floats refused.

    Never use floating point in an accounting system: ``D(0.1)`` is a
    ``TypeError`` on purpose. Strings are plain decimal text as machines write
    it (``1234.50``, ``-0.5``, ``1E-7``), surrounding spaces allowed; a comma,
    a space inside or any other separator is an error, never guessed at (text
    people wrote goes through :func:`parse_amount`). NaN and infinities are
    refused.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"money must be a str, int or Decimal, not {type(value).__name__}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise DataError(f"not a finite number: {value!r}")
        return value
    if isinstance(value, int):
        return Decimal(value)
    text = value.strip()
    if not _NUMBER_RE.fullmatch(text):
        raise DataError(f"not a decimal number: {value!r}")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid forms
        raise DataError(f"not a decimal number: {value!r}") from exc
    return number


def is_currency_code(code: str) -> bool:
    """True when ``code`` has the shape of an ISO 4217 code (three capitals)."""
    return bool(_CURRENCY_RE.match(code))


def is_iso_currency(code: str, *, withdrawn: bool = False) -> bool:
    """True when ``code`` is an active ISO 4217 currency (``reconciliation.currencies``);
    with ``withdrawn``, also when it is one withdrawn since Microsoft began billing in it.

    Money entered now (a payment) is in an active currency; Microsoft's bills of past
    years (invoices and their lines) may be in a withdrawn one, such as HRK up to 2022.
    """
    return code in MINOR_UNITS or (withdrawn and code in WITHDRAWN)


def minor_unit(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3), for an
    active currency or a withdrawn one (BYR 0, HRK 2).

    2 for a code in neither of ISO 4217's lists: Microsoft's data is taken as sent.
    """
    code = currency.upper()
    return MINOR_UNITS.get(code, WITHDRAWN.get(code, 2))


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


# --- amounts people write ------------------------------------------------------

_SPACES = " \u00a0\u202f"  # space, no-break space, narrow no-break space
_LONGEST = 100  # characters: far past any amount of 28 digits with separators and a sign
_MINUS = ("-", "\u2212")  # hyphen-minus, minus sign
_NOT_NUMBER = {"nan", "snan", "inf", "infinity", "+inf", "-inf", "+infinity", "-infinity"}


_PLAIN = {".": re.compile(r"([0-9]+)(?:\.([0-9]+))?"), ",": re.compile(r"([0-9]+)(?:,([0-9]+))?")}


@functools.cache
def _number_re(decimal_separator: str) -> re.Pattern[str]:
    """Digits; or groups of three after one to three digits, one grouping sign throughout."""
    group = "," if decimal_separator == "." else "."
    point = re.escape(decimal_separator)
    return re.compile(
        rf"(?P<int>[0-9]+|[1-9][0-9]{{0,2}}(?P<sep>[{re.escape(group)}{_SPACES}])[0-9]{{3}}"
        rf"(?:(?P=sep)[0-9]{{3}})*)(?:{point}(?P<frac>[0-9]+))?"
    )


@functools.cache
def _affixes(currency: str) -> tuple[str, ...]:
    """The code and the symbols of ``currency``, longest first (``US$`` before ``$``)."""
    return tuple(sorted((currency, *SYMBOLS.get(currency, ())), key=len, reverse=True))


@functools.cache
def _all_affixes() -> frozenset[str]:
    return frozenset(MINOR_UNITS) | {sign for signs in SYMBOLS.values() for sign in signs}


def _strip_currency(text: str, currency: str) -> str:
    """``text`` without one leading or trailing code or symbol of ``currency``."""
    upper = text.upper()
    for affix in _affixes(currency):
        key = affix.upper() if affix == currency else affix
        probe = upper if affix == currency else text
        if probe.startswith(key):
            return text[len(key) :].strip()
        if probe.endswith(key):
            return text[: -len(key)].strip()
    return text


def _foreign_sign(text: str, currency: str) -> str | None:
    """A currency code or symbol, not the row's, at either end of ``text``."""
    own = {affix.upper() for affix in _affixes(currency)}
    for piece in (re.match(r"[^0-9\s.,()+\-\u2212]+", text), re.search(r"[^0-9\s.,()]+$", text)):
        if piece is None or piece.group().upper() in own:
            continue
        if piece.group().upper() in MINOR_UNITS or piece.group() in _all_affixes():
            return piece.group()
    return None


def _why_not(core: str, decimal_separator: str) -> str:
    """The rule a text that is not an amount breaks, with what to do about it."""
    group = "," if decimal_separator == "." else "."
    lowered = core.lower()
    if lowered in _NOT_NUMBER:
        return "not a number; write the amount in digits"
    if re.fullmatch(r"[0-9.,]*[0-9][eE][+-]?[0-9]+", core):
        return "exponent notation is not accepted; write the amount in full"
    if decimal_separator == "." and re.fullmatch(r"[0-9]+(?:[. ][0-9]{3})*,[0-9]{1,2}", core):
        return (
            'a decimal comma, but [payments] decimal_separator is "." '
            '(set it to "," for files that write 1234,50)'
        )
    if decimal_separator == "," and re.fullmatch(r"[0-9]+(?:[, ][0-9]{3})*\.[0-9]{1,2}", core):
        return (
            'a decimal point, but [payments] decimal_separator is "," '
            '(set it to "." for files that write 1234.50)'
        )
    example = "1,234.50" if decimal_separator == "." else "1.234,50"
    return (
        f"not an amount: expected digits, {decimal_separator!r} before the decimals and "
        f"{group!r} or a space between groups of three (like {example})"
    )


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def parse_amount(
    value: str | int | Decimal,
    currency: str,
    *,
    decimal_separator: str = ".",
    max_digits: int = 15,
) -> Decimal:
    """The positive amount of ``currency`` that ``value`` states, exactly; else ``InputError``.

    Text follows explicit rules, nothing is guessed:

    * digits, then optionally ``decimal_separator`` and the decimals
      (``1234.50``; with ``decimal_separator=","``: ``1234,50``);
    * the integer part may be grouped in threes by the other sign (``,`` or
      ``.``), a space or a no-break space, one of them throughout (``1,234.50``,
      ``1 234,50``);
    * the currency's code (any case) or one of its symbols may stand before or
      after the number (``USD 12.50``, ``12,50 €``, ``US$12.50``).

    Numbers (an XLSX number cell: int or Decimal) need no separators. Either
    way the amount must be finite and positive (a refund is a void, not a
    negative payment), have at most ``max_digits`` digits and no more decimals
    than the currency's minor unit (a withdrawn currency's too, like HRK: whether
    a payment may be in it is the caller's rule). The error's message is the
    reason alone, for the caller to place (``file:row: amount: reason``).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"an amount must be a str, int or Decimal, not {type(value).__name__}")
    places = MINOR_UNITS.get(currency, WITHDRAWN.get(currency))
    if places is None:
        raise InputError(f"{_shown(currency)} is not an ISO 4217 currency code")
    if isinstance(value, str):
        plain = _PLAIN[decimal_separator].fullmatch(value)
        if plain is not None:
            # the common case, digits and decimals alone, checked without Decimal's help
            integer, fraction = plain.groups("")
            digits = len(integer.lstrip("0")) + len(fraction)
            if 0 < digits <= max_digits and len(fraction) <= places and integer[:1] != "0":
                return Decimal(f"{integer}.{fraction}" if fraction else integer)
        number = _parse_text(value, currency, decimal_separator)
    elif isinstance(value, int):
        number = Decimal(value)
    elif not value.is_finite():
        raise InputError(f"{value} is not a finite number; write the amount in digits")
    else:
        number = value
    return _checked(number, currency, max_digits)


def _parse_text(text: str, currency: str, decimal_separator: str) -> Decimal:
    if decimal_separator not in (".", ","):
        raise ValueError(f"decimal_separator must be '.' or ',', not {decimal_separator!r}")
    if len(text) > _LONGEST:
        raise InputError(f"{len(text)} characters long; an amount is a short number")
    body = text.strip()
    negative = False
    # A sign may stand outside the currency ("-$5", "(USD 5)") or inside it ("$-5", "5- EUR").
    if body.startswith(_MINUS):
        negative, body = True, body[1:].strip()
    elif body[:1] == "(" and body[-1:] == ")":
        negative, body = True, body[1:-1].strip()
    core = _strip_currency(body, currency)
    if core.startswith(_MINUS):
        negative, core = True, core[1:].strip()
    elif core.endswith(_MINUS):
        negative, core = True, core[:-1].strip()
    elif core[:1] == "(" and core[-1:] == ")":
        negative, core = True, core[1:-1].strip()
    match = _number_re(decimal_separator).fullmatch(core)
    if match is not None and negative:
        raise InputError(
            f"{_shown(text)} is negative; a payment is positive (void a wrong payment instead)"
        )
    if match is None:
        foreign = _foreign_sign(core, currency)
        if foreign is not None:
            raise InputError(
                f"{_shown(text)}: {foreign!r} is not the row's currency {currency}; "
                "fix the amount or the currency"
            )
        raise InputError(f"{_shown(text)}: {_why_not(core, decimal_separator)}")
    integer = match["int"]
    if match["sep"]:
        integer = integer.replace(match["sep"], "")
    fraction = match["frac"]
    return Decimal(f"{integer}.{fraction}" if fraction else integer)


def _checked(number: Decimal, currency: str, max_digits: int) -> Decimal:
    if number.is_signed() and number != 0:
        raise InputError(
            f"{number} is negative; a payment is positive (void a wrong payment instead)"
        )
    if number == 0:
        raise InputError("zero; a payment is a positive amount")
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    decimals = max(0, -exponent)
    if len(digits) + max(0, exponent) > max_digits:
        raise InputError(
            f"more than {max_digits} digits ([payments] max_digits); is this the amount column?"
        )
    places = minor_unit(currency)
    if decimals > places:
        raise InputError(
            f"{number} has {decimals} decimal{'s' if decimals != 1 else ''}; "
            f"{currency} has {places}"
        )
    if exponent > 0:
        # 1E+3 from a number cell: stored and shown as 1000
        number = number.quantize(Decimal(1))
    return number
