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

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Subquery, select, tuple_, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from reconciliation.money import ZERO
from sync.config import Settings
from sync.db.models import Customer, Payment
from sync.reconcile import customer_charges

__all__ = ["SHOWN_PAYMENTS", "CreditPayment", "InCredit", "left_in_credit"]

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


def left_in_credit(
    connection: Connection, settings: Settings, new: Subquery, today: date
) -> list[InCredit]:
    """The customers and currencies that ``new`` payments leave below zero, by name.

    ``new`` selects the import's new payments: ``customer_id``, ``currency``,
    ``payment_date``, ``amount`` and ``reference``. Reads only; the caller ends
    the transaction.
    """
    touched = select(new.c.customer_id).distinct()
    imported: dict[_Key, Decimal] = defaultdict(lambda: ZERO)
    stored: dict[_Key, Decimal] = defaultdict(lambda: ZERO)
    n = new.c
    latest_new = _sums(
        connection, select(*_raw(n.customer_id, n.currency, n.payment_date, n.amount)), imported
    )
    if latest_new is None:
        return []
    p = Payment
    latest_stored = _sums(
        connection,
        select(*_raw(p.customer_id, p.currency, p.payment_date, p.amount)).where(
            p.customer_id.in_(touched), p.voided_at.is_(None)
        ),
        stored,
    )
    as_of = max(today, latest_new, latest_stored or latest_new)
    charged: dict[_Key, Decimal] = defaultdict(lambda: ZERO)
    with Session(bind=connection) as session:
        for charge in customer_charges(session, settings, touched, as_of):
            charged[(charge.customer_id, charge.currency)] += charge.amount
    balances = {key: charged[key] - stored[key] - added for key, added in imported.items()}
    in_credit = sorted(key for key, balance in balances.items() if balance < 0)
    if not in_credit:
        return []
    shown = _first_payments(connection, new, in_credit)
    names = dict(
        connection.execute(
            select(Customer.id, Customer.name).where(
                Customer.id.in_([customer for customer, _ in in_credit])
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


def _first_payments(
    connection: Connection, new: Subquery, keys: list[_Key]
) -> dict[_Key, tuple[list[CreditPayment], int]]:
    """Per key, the import's first ``SHOWN_PAYMENTS`` payments and how many more there are."""
    shown: dict[_Key, tuple[list[CreditPayment], int]] = defaultdict(lambda: ([], 0))
    n = new.c
    query = (
        select(*_raw(n.customer_id, n.currency, n.reference, n.payment_date, n.amount))
        .where(tuple_(n.customer_id, n.currency).in_(keys))
        .order_by(n.customer_id, n.currency, n.payment_date, n.reference)
        .execution_options(stream_results=True, yield_per=10_000)
    )
    for customer, currency, reference, day, amount in connection.execute(query):
        listed, more = shown[(customer, currency)]
        if len(listed) < SHOWN_PAYMENTS:
            listed.append(CreditPayment(reference, _day(day), _money(amount)))
        else:
            shown[(customer, currency)] = (listed, more + 1)
    return shown
