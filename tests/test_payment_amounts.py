"""Amounts written by people: one parser, explicit rules, nothing guessed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciliation.currencies import MINOR_UNITS, SYMBOLS
from reconciliation.errors import DataError, InputError
from reconciliation.money import D, minor_unit, parse_amount

SPACES = (" ", "\u00a0", "\u202f")


def _grouped(integer: str, sign: str) -> str:
    head = len(integer) % 3 or 3
    groups = [integer[:head]] + [integer[n : n + 3] for n in range(head, len(integer), 3)]
    return sign.join(groups)


@st.composite
def written_amounts(draw: st.DrawFn) -> tuple[str, str, str, Decimal]:
    """An amount, its currency and separator, and one way a bank export may write it."""
    currency = draw(st.sampled_from(sorted(MINOR_UNITS)))
    places = MINOR_UNITS[currency]
    units = draw(st.integers(min_value=1, max_value=10**12))
    decimals = draw(st.integers(min_value=0, max_value=places))
    number = Decimal(units).scaleb(-decimals)
    separator = draw(st.sampled_from([".", ","]))
    integer, _, fraction = f"{number:f}".partition(".")
    group = draw(st.sampled_from([None, "," if separator == "." else ".", *SPACES]))
    if group is not None and integer.startswith("0"):
        group = None
    body = _grouped(integer, group) if group else integer
    if fraction:
        body += separator + fraction
    affix = draw(st.sampled_from([None, currency, currency.lower(), *SYMBOLS.get(currency, ())]))
    if affix is not None:
        gap = draw(st.sampled_from(["", *SPACES]))
        body = affix + gap + body if draw(st.booleans()) else body + gap + affix
    pad = draw(st.sampled_from(["", " ", "\u00a0"]))
    return pad + body + pad, currency, separator, number


@given(written_amounts())
def test_every_supported_spelling_of_an_amount_parses_to_the_same_decimal(case) -> None:  # type: ignore[no-untyped-def]
    text, currency, separator, number = case
    assert parse_amount(text, currency, decimal_separator=separator) == number


@given(
    st.integers(min_value=1, max_value=10**9),
    st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
    st.sampled_from([".", ","]),
)
def test_a_number_cell_is_taken_as_it_is(units, currency, separator) -> None:  # type: ignore[no-untyped-def]
    number = Decimal(units).scaleb(-minor_unit(currency))
    assert parse_amount(number, currency, decimal_separator=separator) == number
    assert parse_amount(units, currency) == units


MALFORMED = [
    "1,2,3",
    "12,34,567",
    "1,23.45",
    "1,2345.00",
    "0,123",
    "1.234.56",
    "1,234 567",
    "12.",
    ".50",
    "1e5",
    "1E+3",
    "1.5e2",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "abc",
    "",
    "  ",
    "$",
    "-",
    "+5",
    "12 34",
    "١٢٣",
    "12\x0034",
    "12_345",
    "0x1F",
    "1/2",
    "12 USD USD",
    "USD12USD",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_amount_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_amount(text, "USD")
    assert "\n" not in str(info.value)
    assert str(info.value)


@given(written_amounts(), st.sampled_from(["1,2,3", "e5", "..", ",,", "x", "€€", "--"]))
def test_junk_around_a_valid_amount_is_refused(case, junk: str) -> None:  # type: ignore[no-untyped-def]
    text, currency, separator, _ = case
    with pytest.raises(InputError):
        parse_amount(text + junk, currency, decimal_separator=separator)


@pytest.mark.parametrize(
    "text", ["-5", "-5.00", "5-", "(5.00)", "-$5", "$-5", "USD -5", "-USD 5", "5.00- USD", "−5"]
)
def test_a_negative_amount_is_refused_since_a_refund_is_a_void(text: str) -> None:
    with pytest.raises(InputError, match="negative"):
        parse_amount(text, "USD")


@pytest.mark.parametrize("value", ["0", "0.00", "$0", Decimal(0), 0])
def test_a_zero_amount_is_refused(value: object) -> None:
    with pytest.raises(InputError, match="zero"):
        parse_amount(value, "USD")  # type: ignore[arg-type]


def test_a_decimal_comma_is_refused_under_the_default_and_read_under_comma() -> None:
    with pytest.raises(InputError, match=r'decimal_separator is "\."'):
        parse_amount("1446,24", "EUR")
    assert parse_amount("1446,24", "EUR", decimal_separator=",") == Decimal("1446.24")


def test_a_decimal_point_is_refused_under_comma() -> None:
    with pytest.raises(InputError, match='decimal_separator is ","'):
        parse_amount("1446.24", "EUR", decimal_separator=",")
    assert parse_amount("1446.24", "EUR") == Decimal("1446.24")


def test_thousands_separators_are_the_other_sign_in_groups_of_three() -> None:
    assert parse_amount("1,446.24", "EUR") == Decimal("1446.24")
    assert parse_amount("1.446,24", "EUR", decimal_separator=",") == Decimal("1446.24")
    assert parse_amount("1\u00a0446,24 €", "EUR", decimal_separator=",") == Decimal("1446.24")


def test_more_decimals_than_the_currency_has_are_refused() -> None:
    with pytest.raises(InputError, match="USD has 2"):
        parse_amount("5.001", "USD")
    with pytest.raises(InputError, match="JPY has 0"):
        parse_amount("1000.5", "JPY")
    assert parse_amount("5.001", "KWD") == Decimal("5.001")


def test_more_digits_than_max_digits_are_refused() -> None:
    assert parse_amount("123456789012345", "JPY") == Decimal("123456789012345")
    with pytest.raises(InputError, match="max_digits"):
        parse_amount("1234567890123456", "JPY")
    with pytest.raises(InputError, match="max_digits"):
        parse_amount("9" * 31, "JPY", max_digits=28)
    with pytest.raises(InputError, match="max_digits"):
        parse_amount(Decimal("1e999999"), "USD")
    assert parse_amount("1234", "USD", max_digits=4) == Decimal(1234)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_a_non_finite_number_cell_is_refused(value: Decimal) -> None:
    with pytest.raises(InputError, match="finite"):
        parse_amount(value, "USD")


def test_a_number_cell_with_an_exponent_is_stored_in_full() -> None:
    assert str(parse_amount(Decimal("1E+3"), "USD")) == "1000"


def test_another_currency_beside_the_amount_is_refused() -> None:
    with pytest.raises(InputError, match="not the row's currency USD"):
        parse_amount("€12.50", "USD")
    with pytest.raises(InputError, match="not the row's currency USD"):
        parse_amount("12.50 EUR", "USD")


def test_a_very_long_amount_is_refused_without_echoing_it() -> None:
    with pytest.raises(InputError) as info:
        parse_amount("1" * 200_000, "USD")
    assert len(str(info.value)) < 200


def test_floats_are_never_amounts() -> None:
    with pytest.raises(TypeError):
        parse_amount(12.5, "USD")  # type: ignore[arg-type]


def test_d_never_guesses_what_a_comma_means() -> None:
    for text in ("1,234.50", "1446,24", "1_000", "1 000"):
        with pytest.raises(DataError):
            D(text)
    assert D(" 1234.50 ") == Decimal("1234.50")
    assert D("1E-7") == Decimal("1E-7")


def test_d_refuses_non_finite_numbers() -> None:
    for value in ("NaN", "Infinity", Decimal("NaN"), Decimal("-Infinity")):
        with pytest.raises(DataError):
            D(value)


def test_the_currency_list_is_iso_4217_with_minor_units() -> None:
    assert (minor_unit("USD"), minor_unit("JPY"), minor_unit("KWD"), minor_unit("CLF")) == (
        2,
        0,
        3,
        4,
    )
    assert "ABC" not in MINOR_UNITS
    assert "XAU" not in MINOR_UNITS  # gold has no minor unit: never a payment's currency
    assert all(len(code) == 3 and code.isupper() for code in MINOR_UNITS)
    assert set(SYMBOLS) <= set(MINOR_UNITS)
