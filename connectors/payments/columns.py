"""Checking a batch of CSV rows a column at a time: the plain, valid payment without per-row work.

A payments export is mostly rows that are plainly valid: a known customer, an
ISO date, a currency code, digits for the amount. :class:`ColumnChecker`
proves that of a whole batch with operations over columns (a value seen
before is looked up, not checked again; amounts are read as digits by
numpy) and hands back every row it cannot prove valid, to be checked alone by
the row checker, which gives the reasons. It never refuses a row itself, so
the rules stay written once, in :mod:`connectors.payments.files` and
:func:`reconciliation.money.parse_amount`: a row taken here is one those would
take, with the same values.

``str.isprintable`` stands for "no control character": every character the
row checker refuses as one is not printable (the converse does not hold; such
rows go to the row checker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from itertools import compress
from operator import truth
from typing import Any, NamedTuple

import numpy as np

from reconciliation.currencies import MINOR_UNITS

__all__ = ["BATCH_ROWS", "ColumnChecker", "PaymentBatch"]

BATCH_ROWS = 10_000  # rows checked together
_PLAIN_WIDTH = 18  # characters of an amount read by numpy; longer ones go row by row
_INT64_DIGITS = 18  # minor units of at most this many digits fit an int64


class PaymentBatch(NamedTuple):
    """Consecutive rows of a payment file, checked.

    The columns hold the valid payments, one entry per row; ``rows`` holds
    each other row of the batch checked alone (a ``PaymentRow`` or a
    ``RejectedRow``). Amounts are written as ``str(Decimal)`` writes them and,
    for the credit preview's sums, as integers of the currency's minor unit.
    """

    numbers: list[int]
    customer_ids: list[str]
    dates: list[str]  # ISO dates
    amounts: list[str]
    units: list[int]  # the amount in minor units (cents for USD, yen for JPY)
    currencies: list[str]
    references: list[str]
    invoice_ids: list[str | None]
    rows: list[Any]

    @classmethod
    def empty(cls) -> PaymentBatch:
        """A batch without any payment taken by column."""
        return cls([], [], [], [], [], [], [], [], [])


class _Places(dict[str | None, int]):
    """A checked currency's decimals; -1 for a row whose currency is not plainly valid."""

    def __missing__(self, code: str | None) -> int:
        return -1


_PLACES = _Places(MINOR_UNITS)


class _Memo(dict[str, Any]):
    """Values already checked, and their result (``None``: not plainly valid)."""

    def __init__(self, check: Callable[[str], Any]) -> None:
        super().__init__()
        self._check = check

    def __missing__(self, text: str) -> Any:
        if len(self) > 100_000:
            self.clear()
        value = self[text] = self._check(text)
        return value


def _printable(texts: Iterable[str]) -> bool:
    return "".join(texts).isprintable()


class ColumnChecker:
    """Takes the plainly valid rows of a batch of text rows; see the module docstring."""

    def __init__(
        self,
        *,
        parse_date: Callable[[str], date | str],
        resolve_customer: Callable[[str], str | None],
        longest: Mapping[str, int],
        fields: tuple[str, ...],
        decimal_separator: str,
        max_digits: int,
    ) -> None:
        self.fields = fields
        self.longest = longest
        self.separator = ord(decimal_separator)
        self.max_digits = max_digits

        def customer(text: str) -> str | None:
            text = text.strip()
            if not text or len(text) > longest["customer"] or not text.isprintable():
                return None
            return resolve_customer(text)

        def day(text: str) -> str | None:
            text = text.strip()
            if not text or len(text) > longest["date"] or not text.isprintable():
                return None
            parsed = parse_date(text)
            return parsed.isoformat() if isinstance(parsed, date) else None

        def currency(text: str) -> str | None:
            code = text.strip().upper()
            return code if code in MINOR_UNITS and text.isprintable() else None

        self._customers = _Memo(customer)
        self._dates = _Memo(day)
        self._currencies = _Memo(currency)

    def customer_of(self, text: str) -> str | None:
        """The customer id a cell names plainly (known, printable, not too long); else None."""
        result: str | None = self._customers[text]
        return result

    def date_of(self, text: str) -> str | None:
        """The ISO date a cell plainly holds (within the window); else None."""
        result: str | None = self._dates[text]
        return result

    def currency_of(self, text: str) -> str | None:
        """The ISO 4217 code a cell plainly holds; else None."""
        result: str | None = self._currencies[text]
        return result

    def check(
        self, numbers: Sequence[int], picked: Sequence[Sequence[str]]
    ) -> tuple[PaymentBatch, list[int]]:
        """The batch's plainly valid payments, and the positions of the other rows."""
        size = len(picked)
        columns = dict(zip(self.fields, zip(*picked, strict=True), strict=True))
        customer_ids = list(map(self._customers.__getitem__, columns["customer"]))
        dates = list(map(self._dates.__getitem__, columns["date"]))
        currencies = list(map(self._currencies.__getitem__, columns["currency"]))
        references = self._texts(columns["reference"], self.longest["reference"], required=True)
        invoices = self._texts(columns.get("invoice", ("",) * size), self.longest["invoice"])
        amounts = list(map(str.strip, columns["amount"]))
        places = np.fromiter(map(_PLACES.__getitem__, currencies), np.int64, size)
        amount_ok, units = self._amounts(amounts, places)
        ok = amount_ok
        for column in (customer_ids, dates, currencies, references[0], invoices[0]):
            if not isinstance(column, bool):
                ok &= np.fromiter(map(truth, column), bool, size)
        keep = ok.tolist()
        slow = np.flatnonzero(~ok).tolist()
        if self.separator != ord("."):
            amounts = [text.replace(chr(self.separator), ".") for text in amounts]
        taken = (lambda column: list(compress(column, keep))) if slow else list
        batch = PaymentBatch(
            numbers=taken(numbers),
            customer_ids=taken(customer_ids),
            dates=taken(dates),
            amounts=taken(amounts),
            units=taken(units.tolist()),
            currencies=taken(currencies),
            references=taken(references[1]),
            invoice_ids=[invoice or None for invoice in taken(invoices[1])],
            rows=[],
        )
        return batch, slow

    @staticmethod
    def _texts(
        column: Sequence[str], longest: int, *, required: bool = False
    ) -> tuple[list[bool] | bool, list[str]]:
        """Stripped texts, and whether each is within ``longest`` and printable (and there)."""
        texts = list(map(str.strip, column))
        if (
            (not required or all(texts))
            and max(map(len, texts), default=0) <= longest
            and _printable(texts)
        ):
            return True, texts
        fine = [
            bool(text or not required) and len(text) <= longest and text.isprintable()
            for text in texts
        ]
        return fine, texts

    def _amounts(self, texts: list[str], places: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which amounts are plain digits (``[1-9][0-9]*`` and optionally the separator and
        decimals) within ``max_digits`` and the currency's decimals, and their minor units:
        exactly what :func:`~reconciliation.money.parse_amount` takes at once."""
        size = len(texts)
        if not _printable(texts):  # a NUL would end numpy's text early
            texts = [text if text.isprintable() else "" for text in texts]
        if max(map(len, texts), default=0) > _PLAIN_WIDTH:
            texts = [text if len(text) <= _PLAIN_WIDTH else "" for text in texts]
        array = np.array(texts, dtype=f"<U{_PLAIN_WIDTH}")
        codes = array.view(np.uint32).reshape(size, _PLAIN_WIDTH).astype(np.int64)
        digit = (codes >= ord("0")) & (codes <= ord("9"))
        point = codes == self.separator
        length = (codes != 0).sum(axis=1)
        points = point.sum(axis=1)
        at = np.where(points == 1, point.argmax(axis=1), length)
        decimals = np.where(points == 1, length - at - 1, 0)
        digits = length - points
        ok = (
            ((digit | point | (codes == 0)).all(axis=1))
            & (codes[:, 0] >= ord("1"))
            & (codes[:, 0] <= ord("9"))
            & (points <= 1)
            & ((points == 0) | (decimals > 0))
            & (digits <= self.max_digits)
            & (decimals <= places)
            & (digits - decimals + places <= _INT64_DIGITS)
        )
        units = np.zeros(size, np.int64)
        for column in range(_PLAIN_WIDTH):
            is_digit = digit[:, column]
            units = np.where(is_digit, units * 10 + (codes[:, column] - ord("0")), units)
        units *= 10 ** np.clip(places - decimals, 0, _INT64_DIGITS)
        return ok, units
