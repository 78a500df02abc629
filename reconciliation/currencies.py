"""ISO 4217 currencies: each active or recently withdrawn code with its minor unit; symbols
written beside amounts.

``MINOR_UNITS`` is ISO 4217 list one (current funds), without the codes that
have no minor unit (gold, silver, SDR, bond-market and test units): a payment
or a charge is never in those. A code missing here is not a currency pcsync
accepts from a file, but for a withdrawn one in a payment of its time. Update
the table when ISO publishes an amendment (the latest taken in: XCG, Caribbean
guilder, 2025; ZWG, Zimbabwe gold, 2024), and move a code it withdraws to
``WITHDRAWN`` (and its date to ``WITHDRAWALS``).

``WITHDRAWN`` is the part of ISO 4217 list three (historic denominations) a
Microsoft bill may still be in: the currencies withdrawn since 2015, each with
the minor unit list one gave it while it was in use. Microsoft's bills of those
years stay in the currency they were billed in (a Croatian partner's invoices up
to 2022 are in HRK, the kuna), and so do the payments of those years.

``WITHDRAWALS`` says, for each code in ``WITHDRAWN``, from which day a payment in
it is refused and which currency replaced it: a payment dated before that day
(a customer's 2022 payment in kuna) is money of its time, one dated on or after
it is a mistake. Where the law fixed a conversion rate between the two (units of the
withdrawn currency per one of its successor: 7.53450 HRK per EUR), ``rate`` holds it:
a payment in the successor naming an invoice in the withdrawn currency settles that
invoice at it (``reconciliation.ledger``).

``SYMBOLS`` lists, for the currencies finance teams meet in bank exports, the
signs written before or after an amount besides the code itself (``$``,
``US$``, ``€``, ``kr``). A sign shared by several currencies (``$``, ``kr``,
``¥``) counts for each: the row's currency column says which one it is.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["MINOR_UNITS", "SYMBOLS", "WITHDRAWALS", "WITHDRAWN", "Withdrawal"]

MINOR_UNITS = MappingProxyType({
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2,
    "BND": 2, "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2,
    "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0,
    "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0,
    "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2,
    "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2,
    "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2,
    "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2,
    "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2,
    "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2,
    "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
    "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2,
    "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2,
    "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
    "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
    "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2,
    "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2,
    "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAD": 2, "XAF": 0, "XCD": 2, "XCG": 2,
    "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
})  # fmt: skip

WITHDRAWN = MappingProxyType(
    {
        "ANG": 2,  # Netherlands Antillean guilder, replaced by XCG in 2025
        "BYR": 0,  # Belarusian ruble, replaced by BYN in 2016
        "CUC": 2,  # Cuban convertible peso, withdrawn in 2021
        "HRK": 2,  # Croatian kuna, replaced by EUR in 2023
        "LTL": 2,  # Lithuanian litas, replaced by EUR in 2015
        "MRO": 2,  # Mauritanian ouguiya, replaced by MRU in 2018
        "SLL": 2,  # Sierra Leonean leone, replaced by SLE from 2022
        "STD": 2,  # São Tomé and Príncipe dobra, replaced by STN in 2018
        "VEF": 2,  # Venezuelan bolívar fuerte, replaced by VES in 2018
        "ZWL": 2,  # Zimbabwe dollar, replaced by ZWG in 2024
    }
)


class Withdrawal(NamedTuple):
    """When a withdrawn currency stopped being money, and what replaced it."""

    on: date  # the first day a payment in it is refused
    by: str  # the currency that replaced it
    rate: Decimal | None  # units of it per 1 of ``by``, where the law fixed one; else None


# The day the currency stopped being legal tender: the day its successor replaced it or,
# where the two circulated side by side for a while, the day after that ended. Where the
# sources differ (ISO 4217 list three gives only a month; central banks extended some
# changeovers), the later day is taken: refusing a real payment of the time leaves a
# customer owing money they paid, accepting one a few days late costs nothing.
WITHDRAWALS = MappingProxyType(
    {
        # Caribbean guilder from 2025-03-31; both circulated until 2025-06-30.
        # At par (1 ANG = 1 XCG), both pegged at 1.79 per USD: Centrale Bank van Curaçao en
        # Sint Maarten.
        "ANG": Withdrawal(date(2025, 7, 1), "XCG", Decimal(1)),
        # BYN from 2016-07-01 (10,000 BYR = 1 BYN); both circulated until 2016-12-31
        # (list three: 2017-01).
        # (Presidential Decree No. 450 of 2015-11-04.)
        "BYR": Withdrawal(date(2017, 1, 1), "BYN", Decimal(10000)),
        # Currency unification on 2021-01-01; shops took CUC for 180 days more.
        # (Banks exchanged it until the end of 2021: an exchange, not a payment.)
        # No conversion was fixed in law for debts: CUC was exchanged at 24 CUP, a rate the
        # central bank set for the exchange.
        "CUC": Withdrawal(date(2021, 7, 1), "CUP", None),
        # Euro from 2023-01-01; kuna cash was legal tender alongside until 2023-01-14.
        # Fixed rate 7.53450 HRK per EUR: Council Regulation (EU) 2022/1208.
        "HRK": Withdrawal(date(2023, 1, 15), "EUR", Decimal("7.53450")),
        # Euro from 2015-01-01; litas cash was legal tender alongside until 2015-01-15.
        # Fixed rate 3.45280 LTL per EUR: Council Regulation (EU) No 851/2014.
        "LTL": Withdrawal(date(2015, 1, 16), "EUR", Decimal("3.45280")),
        # MRU from 2018-01-01 (10 MRO = 1 MRU); old notes circulated until 2018-06-30.
        # (Banque Centrale de Mauritanie redenomination.)
        "MRO": Withdrawal(date(2018, 7, 1), "MRU", Decimal(10)),
        # SLE from 2022-07-01 (1,000 SLL = 1 SLE); the old notes stayed legal tender
        # beside it, and sources end that between 2023 and 2024: the latest is taken.
        # (Bank of Sierra Leone redenomination.)
        "SLL": Withdrawal(date(2025, 1, 1), "SLE", Decimal(1000)),
        # STN from 2018-01-01 (1,000 STD = 1 STN); old notes circulated until 2018-06-30.
        # (Banco Central de São Tomé e Príncipe redenomination.)
        "STD": Withdrawal(date(2018, 7, 1), "STN", Decimal(1000)),
        # VES from 2018-08-20 (100,000 VEF = 1 VES).
        # (Banco Central de Venezuela, the 2018 monetary reconversion.)
        "VEF": Withdrawal(date(2018, 8, 20), "VES", Decimal(100000)),
        # ZWG from 2024-04-05 (ISO 4217 amendment of 2024-06-25); sources keep ZWL in
        # use as late as 2024-08-31: that is taken.
        # ZWG came in at a market rate (about 2,500 ZWL per ZWG on 2024-04-05), none fixed.
        "ZWL": Withdrawal(date(2024, 9, 1), "ZWG", None),
    }
)

SYMBOLS = MappingProxyType({
    "USD": ("$", "US$"), "CAD": ("$", "CA$", "C$"), "AUD": ("$", "A$", "AU$"),
    "NZD": ("$", "NZ$"), "HKD": ("$", "HK$"), "SGD": ("$", "S$"),
    "MXN": ("$", "MX$"), "TWD": ("$", "NT$"), "BRL": ("R$",),
    "EUR": ("€",), "GBP": ("£",), "JPY": ("¥", "円"), "CNY": ("¥", "CN¥", "元"),
    "INR": ("₹",), "KRW": ("₩",), "CHF": ("Fr.",), "SEK": ("kr",), "NOK": ("kr",),
    "DKK": ("kr",), "ISK": ("kr",), "PLN": ("zł",), "CZK": ("Kč",), "HUF": ("Ft",),
    "RUB": ("₽",), "TRY": ("₺",), "ILS": ("₪",), "ZAR": ("R",), "THB": ("฿",),
    "PHP": ("₱",), "VND": ("₫",), "NGN": ("₦",), "UAH": ("₴",), "KZT": ("₸",),
})  # fmt: skip
