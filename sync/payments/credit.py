"""Which customers a payment import leaves in credit: a wrong amount seen before it lands.

A payment file with an amount a hundred times too large (a decimal comma read
the wrong way, a typo) takes a customer off the suspend list without a word.
Before anything is stored, the import (and its dry run) works out each touched
customer's balance as the ledger defines it — charges as the reconciliation
makes them, minus the payments that count — with the import's new payments
added. Only the customers the import touches are read.

The balance is taken as of today, or as of the latest of those payments' dates
when one is later, so that every payment of the import counts. A customer and
currency below zero is listed with the import's payments for it.
"""

from __future__ import annotations

from bisect import insort
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Connection, Subquery, func, select, tuple_, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from reconciliation.money import ZERO, minor_unit
from sync.config import Settings
from sync.db.models import Customer, Payment
from sync.reconcile import customer_charges

__all__ = [
    "SHOWN_PAYMENTS",
    "CreditPayment",
    "FirstPayments",
    "ImportTally",
    "InCredit",
    "credit_left",
    "left_in_credit",
    "minor_units",
]

SHOWN_PAYMENTS = 5  # of the import's payments per customer and currency in credit

_Key = tuple[str, str]  # customer id, currency


@dataclass(frozen=True)
class CreditPayment:
    """One of the import's payments to a customer it leaves in credit."""

    reference: str
    payment_date: date
    amount: Decimal


@dataclass(frozen=True)
class InCredit:
    """A customer and currency the import leaves in credit, and the import's payments to it."""

    customer_id: str
    customer_name: str
    currency: str
    balance: Decimal  # below zero: charged minus paid as of ``as_of``, the import included
    as_of: date
    imported: Decimal  # what the import's payments add for this customer and currency
    payments: tuple[CreditPayment, ...]  # the first SHOWN_PAYMENTS, by date and reference
    more: int  # the import's further payments to it, not listed


def _raw(*columns: Any) -> list[Any]:
    """Columns as the driver returns them (no per-value processing: imports are large)."""
    return [type_coerce(column, NullType()) for column in columns]


def _money(value: Any) -> Decimal:
    return value if type(value) is Decimal else Decimal(value)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in minor units of ``currency``, exactly (no context rounding)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    places = minor_unit(currency)  # a withdrawn currency (HRK) too
    whole: int = int("".join(map(str, digits)) or "0") * 10 ** (exponent + places)
    return whole


class _Codes(dict[str, int]):
    def __missing__(self, key: str) -> int:
        code = self[key] = len(self)
        return code


class _Ordinals(dict[str, int]):
    def __missing__(self, key: str) -> int:
        value = self[key] = date.fromisoformat(key).toordinal()
        return value


_NO_CUT = 1 << 40  # a key's cut before it has SHOWN_PAYMENTS payments


class ImportTally:
    """What an import's good rows add per customer and currency, tallied as the file is read.

    Sums are kept in minor units (integers, exact); the first ``SHOWN_PAYMENTS``
    payments of each customer and currency by date and reference are kept as
    they go by. Rows found later not to be new (a reference already stored, a
    duplicate) are taken out with :meth:`exclude`.
    """

    def __init__(self) -> None:
        self._customers = _Codes()
        self._currencies = _Codes()
        self._dense: dict[int, int] = {}
        self.keys: list[_Key] = []
        self._units: list[int] = []
        self._counts: list[int] = []
        self._first: list[list[tuple[str, str, str]]] = []
        self._cut = np.zeros(0, np.int64)
        self._ordinals = _Ordinals()
        self.latest: str | None = None
        self.dirty: set[_Key] = set()  # keys whose first payments must be read again

    def add(
        self,
        customers: list[str],
        currencies: list[str],
        dates: list[str],
        references: list[str],
        amounts: list[str],
        units: list[int],
    ) -> None:
        """Tally payments given by column (ISO dates, amounts as text and in minor units)."""
        size = len(customers)
        if not size:
            return
        customer_codes = np.fromiter(map(self._customers.__getitem__, customers), np.int64, size)
        currency_codes = np.fromiter(map(self._currencies.__getitem__, currencies), np.int64, size)
        combined = customer_codes * 1024 + currency_codes
        seen, inverse = np.unique(combined, return_inverse=True)
        customer_names, currency_names = list(self._customers), list(self._currencies)
        dense_of_seen = np.array(
            [self._key(customer_names[c // 1024], currency_names[c % 1024]) for c in seen.tolist()]
        )
        dense = dense_of_seen[inverse]
        try:
            values = np.array(units, np.int64)
        except OverflowError:
            for key, value in zip(dense.tolist(), units, strict=True):
                self._units[key] += value
        else:
            high, low = np.divmod(values, 10**9)
            sums = np.zeros((2, len(seen)), np.int64)
            np.add.at(sums[0], inverse, high)
            np.add.at(sums[1], inverse, low)
            for key, up, down in zip(dense_of_seen.tolist(), *sums.tolist(), strict=True):
                self._units[key] += up * 10**9 + down
        for key, count in zip(dense_of_seen.tolist(), np.bincount(inverse).tolist(), strict=True):
            self._counts[key] += count
        latest = max(dates)
        if self.latest is None or latest > self.latest:
            self.latest = latest
        ordinals = np.fromiter(map(self._ordinals.__getitem__, dates), np.int64, size)
        keys = dense.tolist()
        for at in np.flatnonzero(ordinals <= self._cut[dense]).tolist():
            self._offer(keys[at], (dates[at], references[at], amounts[at]))

    def _key(self, customer: str, currency: str) -> int:
        code = self._customers[customer] * 1024 + self._currencies[currency]
        dense = self._dense.get(code)
        if dense is None:
            dense = self._dense[code] = len(self.keys)
            self.keys.append((customer, currency))
            self._units.append(0)
            self._counts.append(0)
            self._first.append([])
            self._cut = np.append(self._cut, _NO_CUT)
        return dense

    def _offer(self, key: int, item: tuple[str, str, str]) -> None:
        listed = self._first[key]
        if len(listed) == SHOWN_PAYMENTS:
            if item >= listed[-1]:
                return
            listed.pop()
        insort(listed, item)
        if len(listed) == SHOWN_PAYMENTS:
            self._cut[key] = self._ordinals[listed[-1][0]]

    def exclude(self, customer: str, currency: str, amount: Decimal) -> None:
        """Take out a row tallied before that turned out not to be a new payment."""
        key = self._key(customer, currency)
        self._units[key] -= minor_units(amount, currency)
        self._counts[key] -= 1
        self.dirty.add((customer, currency))

    def imported(self) -> dict[_Key, Decimal]:
        """What the new payments add, per customer and currency that has any."""
        return {
            key: Decimal(units).scaleb(-minor_unit(key[1]))
            for key, units, count in zip(self.keys, self._units, self._counts, strict=True)
            if count > 0
        }

    def first(self, key: _Key) -> tuple[list[CreditPayment], int]:
        """The first payments of ``key`` (not dirty) and how many more there are."""
        dense = self._dense[self._customers[key[0]] * 1024 + self._currencies[key[1]]]
        listed = [
            CreditPayment(reference, date.fromisoformat(day), Decimal(amount))
            for day, reference, amount in self._first[dense]
        ]
        return listed, self._counts[dense] - len(listed)


def _sums(connection: Connection, query: Any, paid: dict[_Key, Decimal]) -> date | None:
    """Add each row's amount to its customer and currency; the latest date seen."""
    latest: date | None = None
    result = connection.execute(query.execution_options(stream_results=True, yield_per=10_000))
    for customer_id, currency, day, amount in result:
        paid[(customer_id, currency)] += _money(amount)
        when = _day(day)
        if latest is None or when > latest:
            latest = when
    return latest


FirstPayments = dict[_Key, tuple[list[CreditPayment], int]]


def left_in_credit(
    connection: Connection, settings: Settings, new: Subquery, tally: ImportTally, today: date
) -> list[InCredit]:
    """The customers and currencies that ``new`` payments leave below zero, by name.

    ``new`` selects the import's new payments: ``customer_id``, ``currency``,
    ``payment_date``, ``amount`` and ``reference``; ``tally`` holds their sums
    and first payments. Reads only; the caller ends the transaction.
    """
    imported = tally.imported()
    if not imported:
        return []
    latest_new = (
        _day(connection.execute(select(func.max(new.c.payment_date))).scalar_one())
        if tally.dirty
        else date.fromisoformat(tally.latest or today.isoformat())
    )

    def first(keys: list[_Key]) -> FirstPayments:
        reread = [key for key in keys if key in tally.dirty]
        shown = _first_payments(connection, new, reread) if reread else {}
        for key in keys:
            if key not in tally.dirty:
                shown[key] = tally.first(key)
        return shown

    touched = select(new.c.customer_id).distinct()
    return credit_left(connection, settings, imported, latest_new, touched, first, today)


def credit_left(
    connection: Connection,
    settings: Settings,
    imported: dict[_Key, Decimal],
    latest_new: date,
    touched: Any,
    first: Callable[[list[_Key]], FirstPayments],
    today: date,
) -> list[InCredit]:
    """The customers and currencies that an import's new payments leave below zero, by name.

    ``imported`` is what the new payments add per customer and currency,
    ``latest_new`` their latest date, ``touched`` their customers (a list, or a
    SQL selection of ids) and ``first`` gives the first ``SHOWN_PAYMENTS`` of
    them (by date and reference) and how many more, per customer and currency.
    Reads only; the caller ends the transaction.
    """
    if not imported:
        return []
    p = Payment
    stored: dict[_Key, Decimal] = defaultdict(lambda: ZERO)
    customers = sorted({customer for customer, _ in imported})
    latest_stored: date | None = None
    for start in range(0, len(customers), 500):
        some = customers[start : start + 500]
        latest = _sums(
            connection,
            select(*_raw(p.customer_id, p.currency, p.payment_date, p.amount)).where(
                p.customer_id.in_(some), p.voided_at.is_(None)
            ),
            stored,
        )
        if latest is not None and (latest_stored is None or latest > latest_stored):
            latest_stored = latest
    as_of = max(today, latest_new, latest_stored or latest_new)
    charged: dict[_Key, Decimal] = defaultdict(lambda: ZERO)
    parts = (
        [touched[start : start + 500] for start in range(0, len(touched), 500)]
        if isinstance(touched, list)
        else [touched]
    )
    with Session(bind=connection) as session:
        for part in parts:
            for charge in customer_charges(session, settings, part, as_of):
                charged[(charge.customer_id, charge.currency)] += charge.amount
    balances = {key: charged[key] - stored[key] - added for key, added in imported.items()}
    in_credit = sorted(key for key, balance in balances.items() if balance < 0)
    if not in_credit:
        return []
    shown = first(in_credit)
    names: dict[str, str] = {}
    wanted = sorted({customer for customer, _ in in_credit})
    for start in range(0, len(wanted), 500):
        names.update(
            connection.execute(
                select(Customer.id, Customer.name).where(
                    Customer.id.in_(wanted[start : start + 500])
                )
            ).all()
        )
    found = [
        InCredit(
            customer_id=customer,
            customer_name=names.get(customer, customer),
            currency=currency,
            balance=balances[(customer, currency)],
            as_of=as_of,
            imported=imported[(customer, currency)],
            payments=tuple(shown[(customer, currency)][0]),
            more=shown[(customer, currency)][1],
        )
        for customer, currency in in_credit
    ]
    return sorted(found, key=lambda c: (c.customer_name.casefold(), c.customer_id, c.currency))


def _first_payments(connection: Connection, new: Subquery, keys: list[_Key]) -> FirstPayments:
    """Per key, the import's first ``SHOWN_PAYMENTS`` payments and how many more there are.

    Ordered by date and reference as Python orders text (code points), as the
    tally and the dry run do: the database's collation may order text otherwise.
    """
    kept: dict[_Key, list[tuple[date, str, Decimal]]] = defaultdict(list)
    counts: dict[_Key, int] = defaultdict(int)
    n = new.c
    query = (
        select(*_raw(n.customer_id, n.currency, n.reference, n.payment_date, n.amount))
        .where(tuple_(n.customer_id, n.currency).in_(keys))
        .execution_options(stream_results=True, yield_per=10_000)
    )
    for customer, currency, reference, day, amount in connection.execute(query):
        key = (customer, currency)
        counts[key] += 1
        listed = kept[key]
        item = (_day(day), reference, _money(amount))
        if len(listed) == SHOWN_PAYMENTS:
            if item[:2] >= listed[-1][:2]:
                continue
            listed.pop()
        insort(listed, item, key=lambda entry: entry[:2])
    return {
        key: (
            [CreditPayment(reference, day, amount) for day, reference, amount in kept[key]],
            counts[key] - len(kept[key]),
        )
        for key in keys
    }
