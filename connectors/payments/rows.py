"""One payment row checked: every field's rule, and every problem named with what to do.

Amounts follow :func:`reconciliation.money.parse_amount`, currencies are ISO
4217 codes in use (or one since withdrawn, for a payment dated before its
withdrawal: ``reconciliation.currencies.WITHDRAWALS``), dates are written in
the configured format (or as plain ISO dates when that format never writes a
date in ISO's shape) between 2000-01-01 and a year from today, a timestamp
with a UTC offset dated in UTC; no field holds a control character or more
characters than it can have. A row comes out as a :class:`PaymentRow` or, with
every reason, as a :class:`RejectedRow`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from connectors.payments.records import Cell, cell_text
from reconciliation.currencies import MINOR_UNITS, WITHDRAWALS, WITHDRAWN
from reconciliation.errors import InputError
from reconciliation.money import parse_amount

__all__ = [
    "EARLIEST_DATE",
    "FIELDS",
    "LONGEST",
    "REQUIRED",
    "PaymentRow",
    "ReadRules",
    "RejectedRow",
    "RowChecker",
    "RowProblem",
    "shown",
]

FIELDS = ("customer", "date", "amount", "currency", "reference", "invoice")
REQUIRED = ("customer", "date", "amount", "currency", "reference")
EARLIEST_DATE = date(2000, 1, 1)

# The longest each field can be: the database's column (reference 255, an
# invoice id 64), a domain name (253), and far past any date or amount.
_LONGEST = {"customer": 255, "date": 64, "amount": 100, "currency": 16, "reference": 255}
_LONGEST_INVOICE = 64
# C0 and C1 controls, zero-width and bidirectional marks, line/paragraph separators, BOM.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class ReadRules:
    """How a payment file is read: its column names and how amounts and dates are written.

    ``columns`` maps each field to its header (matched case-insensitively);
    ``today`` bounds dates: none later than a year after it.
    """

    columns: Mapping[str, str]
    today: date
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    max_digits: int = 15

    @property
    def latest_date(self) -> date:
        """The latest payment date accepted: a year from today."""
        return self.today + timedelta(days=366)


class PaymentRow(NamedTuple):
    """One valid payment: ``customer_id`` resolved from a tenant id or primary domain.

    ``row`` is the row as a spreadsheet shows it; ``values`` the row's text by field.
    (A named tuple, not a dataclass: a file has a million of them, and a tuple is
    made in a fifth of the time.)
    """

    row: int
    customer_id: str
    payment_date: date
    amount: Decimal
    currency: str
    reference: str
    invoice_id: str | None
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that is not a valid payment: each ``(field, reason)``, and the row's text.

    ``reference`` is the row's reference when that field itself is sound, so
    that a later row repeating it is still told it is a duplicate.
    """

    row: int
    values: Mapping[str, str]
    problems: tuple[tuple[str, str], ...]
    reference: str | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a row was rejected; ``str()`` is ``file:row: field: reason``."""

    file: str
    row: int
    field: str
    reason: str
    values: Mapping[str, str] = _field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.field}: {self.reason}"


def shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


class RowChecker:
    """Turns one record's cells into a :class:`PaymentRow` or a :class:`RejectedRow`."""

    def __init__(self, rules: ReadRules, resolve_customer: Callable[[str], str | None]) -> None:
        self.rules = rules
        self.resolve = resolve_customer
        self.iso_only = rules.date_format == "%Y-%m-%d"
        # A format that writes dates in ISO's shape ("%Y-%d-%m") is read only its own way:
        # read as ISO too, 2026-02-11 would be 11 February, not the 2 November it means.
        # Written as UTC datetimes, so that %z and %Z write what they read (an offset).
        self.iso_too = self.iso_only or not _ISO_DATE.fullmatch(
            datetime(2026, 11, 21, tzinfo=UTC).strftime(rules.date_format)
        )
        self.latest = rules.latest_date
        self.window = f"between {EARLIEST_DATE.isoformat()} and {rules.latest_date.isoformat()}"

    def parse_date(self, cell: Cell) -> date | str:
        """The date, or why it is not one."""
        if isinstance(cell, date):
            day = cell
        else:
            text = cell.strip() if isinstance(cell, str) else str(cell)
            parsed = self._parse_date(text)
            if parsed is None:
                if self.iso_only:
                    return f"not a date: {shown(text)} (expected YYYY-MM-DD, like 2026-11-01)"
                example = datetime(2026, 11, 1, tzinfo=UTC).strftime(self.rules.date_format)
                iso = ", or YYYY-MM-DD" if self.iso_too else ""
                return (
                    f"not a date: {shown(text)} (expected {self.rules.date_format}, like "
                    f"{example}{iso})"
                )
            day = parsed
        if not EARLIEST_DATE <= day <= self.latest:
            return f"{day.isoformat()} is out of range: a payment date is {self.window}"
        return day

    def _parse_date(self, text: str) -> date | None:
        if self.iso_only:
            try:
                if _ISO_DATE.fullmatch(text):
                    return date.fromisoformat(text)
                return datetime.strptime(text, "%Y-%m-%d").date()  # 2026-11-1
            except ValueError:
                return None
        try:
            read = datetime.strptime(text, self.rules.date_format)
        except ValueError:
            if self.iso_too and _ISO_DATE.fullmatch(text):
                try:
                    return date.fromisoformat(text)
                except ValueError:
                    return None
            return None
        # Payment dates are calendar dates in UTC: 23:30 at -05:00 is the next day's 04:30.
        return (read.astimezone(UTC) if read.tzinfo is not None else read).date()

    def check_text(self, number: int, texts: dict[str, str]) -> PaymentRow | RejectedRow:
        """A row of text cells (CSV): the common, valid row taken at once, else :meth:`check`."""
        customer = texts["customer"]
        day = texts["date"]
        currency = texts["currency"].upper()
        reference = texts["reference"]
        joined = customer + day + currency + reference + texts["amount"]
        if (
            reference
            and len(joined) < 200
            and currency in MINOR_UNITS
            and self.iso_only
            and _ISO_DATE.fullmatch(day)
            and not _CONTROL.search(joined)
            and (customer_id := self.resolve(customer)) is not None
        ):
            invoice = texts.get("invoice", "")
            if len(invoice) <= _LONGEST_INVOICE and not _CONTROL.search(invoice):
                try:
                    payment_date = date.fromisoformat(day)
                    amount = parse_amount(
                        texts["amount"],
                        currency,
                        decimal_separator=self.rules.decimal_separator,
                        max_digits=self.rules.max_digits,
                    )
                except (ValueError, InputError):
                    pass
                else:
                    if EARLIEST_DATE <= payment_date <= self.latest:
                        return PaymentRow(
                            number,
                            customer_id,
                            payment_date,
                            amount,
                            currency,
                            reference,
                            invoice or None,
                            texts,
                        )
        return self.check(number, texts)  # type: ignore[arg-type]

    def check(self, number: int, cells: dict[str, Cell]) -> PaymentRow | RejectedRow:
        """Every field of one row checked; all problems reported, not only the first."""
        texts = {name: cell_text(cell) for name, cell in cells.items()}
        problems: list[tuple[str, str]] = []
        bad: set[str] = set()

        def refuse(name: str, reason: str) -> None:
            problems.append((name, reason))
            bad.add(name)

        joined = "".join(texts.values())
        if _CONTROL.search(joined):
            for name, text in texts.items():
                found = _CONTROL.search(text)
                if found:
                    refuse(
                        name,
                        f"contains the control character U+{ord(found.group()):04X}; remove it",
                    )
        if len(joined) > 250:
            for name, text in texts.items():
                longest = _LONGEST.get(name, _LONGEST_INVOICE)
                if len(text) > longest and name not in bad:
                    refuse(
                        name,
                        f"{len(text)} characters long, at most {longest}; is the column right?",
                    )
        for name in REQUIRED:
            if not texts.get(name) and name not in bad:
                refuse(name, "missing")
        customer_id = None
        if "customer" not in bad:
            customer_id = self.resolve(texts["customer"])
            if customer_id is None:
                refuse(
                    "customer",
                    f"unknown customer {shown(texts['customer'])} "
                    "(use the tenant id or primary domain; run `pcsync sync` if it is new)",
                )
        payment_date: date | str = ""
        if "date" not in bad:
            payment_date = self.parse_date(cells["date"])
            if isinstance(payment_date, str):
                refuse("date", payment_date)
        currency = texts.get("currency", "").upper()
        if "currency" not in bad and currency not in MINOR_UNITS:
            if currency not in WITHDRAWN:
                refuse(
                    "currency",
                    f"{shown(texts['currency'])} is not an ISO 4217 currency code (like USD, EUR)",
                )
            elif isinstance(payment_date, date):  # else the date's own problem is named
                # A withdrawn currency (HRK) is money of its time: a customer's 2022 payment
                # in kuna settles their 2022 charges in kuna; a later one is a mistake.
                gone = WITHDRAWALS[currency]
                if payment_date >= gone.on:
                    # A debt in HRK paid in EUR is settled at the fixed rate (ledger.py).
                    advice = (
                        f"enter it in {gone.by} naming its {currency} invoice in the invoice "
                        f"column: it settles that invoice at the fixed rate {gone.rate}; "
                        "or fix the date"
                        if gone.rate is not None
                        else "fix the currency and amount, or the date"
                    )
                    refuse(
                        "currency",
                        f"{currency} was withdrawn on {gone.on.isoformat()} (replaced by "
                        f"{gone.by}); a payment dated {payment_date.isoformat()} is in a "
                        f"currency in use: {advice}",
                    )
        amount = None
        written = cells["amount"]
        if "amount" not in bad and isinstance(written, date):
            refuse("amount", f"a date ({written.isoformat()}), not an amount; is the column right?")
        elif "amount" not in bad and "currency" not in bad and not isinstance(written, date):
            try:
                amount = parse_amount(
                    written,
                    currency,
                    decimal_separator=self.rules.decimal_separator,
                    max_digits=self.rules.max_digits,
                )
            except InputError as exc:
                refuse("amount", str(exc))
        reference = texts.get("reference", "")
        if problems:
            clean = reference if reference and "reference" not in bad else None
            return RejectedRow(number, texts, tuple(problems), clean)
        assert customer_id is not None
        assert isinstance(payment_date, date)
        assert amount is not None
        return PaymentRow(
            number,
            customer_id,
            payment_date,
            amount,
            currency,
            reference,
            texts.get("invoice") or None,
            texts,
        )


LONGEST = {**_LONGEST, "invoice": _LONGEST_INVOICE}  # by field
