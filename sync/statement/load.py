"""Load a customer's ledger and lines from the database and build the statements.

The figures come from the same charges and payments the reconciliation uses
(``customer_charges`` and the stored payments, through ``build_ledgers``), so a
statement's balance, overdue amount and aging are the reconciliation's. The
products on each charge are Microsoft's lines of that invoice for that
customer, summed per product, SKU and unit price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import InputError
from reconciliation.ledger import Payment, build_ledgers
from reconciliation.statement import LineSummary, Statement, StatementParty, build_statement
from sync.collections.approvals import resolve_customers
from sync.config import Settings
from sync.db import models
from sync.reconcile import _terms, customer_charges

__all__ = ["build_statements"]


def _money(value: Any) -> Decimal:
    return value if type(value) is Decimal else Decimal(str(value))


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _payments(session: Session, ids: list[str]) -> list[Payment]:
    p = models.Payment
    rows = session.execute(
        select(
            p.reference, p.customer_id, p.payment_date, p.amount, p.currency, p.invoice_id
        ).where(p.voided_at.is_(None), p.customer_id.in_(ids))
    )
    return [
        Payment(ref, customer, _day(day), _money(amount), currency, invoice)
        for ref, customer, day, amount, currency, invoice in rows
    ]


def _line_summaries(
    session: Session, customer_id: str, invoice_ids: list[str]
) -> list[LineSummary]:
    """The customer's lines of these invoices, summed per product, SKU and unit price.

    Summed here, as decimals: SQLite's SUM of the amounts it stores as text is a float.
    """
    lines = models.LineItem
    keys = (lines.invoice_id, lines.product_name, lines.product_id, lines.sku_id, lines.unit_price)
    rows = session.execute(
        select(*keys, lines.quantity, lines.subtotal)
        .where(lines.invoice_id.in_(invoice_ids), lines.customer_id == customer_id)
        .execution_options(yield_per=5000)
    )
    sums: dict[tuple[str, str, str, Decimal | None], list[Decimal | None]] = {}
    for invoice_id, name, product_id, sku, price, quantity, subtotal in rows:
        key = (invoice_id, name or product_id or "", sku or "", _maybe(price))
        total = sums.setdefault(key, [None, Decimal(0)])
        if quantity is not None:
            total[0] = (total[0] or Decimal(0)) + _money(quantity)
        total[1] = (total[1] or Decimal(0)) + _money(subtotal)
    return [
        LineSummary(invoice_id, product, sku, price, quantity, subtotal or Decimal(0))
        for (invoice_id, product, sku, price), (quantity, subtotal) in sums.items()
    ]


def _maybe(value: Any) -> Decimal | None:
    return None if value is None else _money(value)


def _stage(
    session: Session, customer_id: str, currency: str, as_of: date
) -> tuple[str | None, bool]:
    """The collections stage of the plan stored for that date, and whether one is stored."""
    flags = models.CollectionFlag
    row = session.execute(
        select(flags.stage, flags.action)
        .where(flags.customer_id == customer_id, flags.currency == currency, flags.as_of == as_of)
        .order_by(flags.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return row[0], True
    planned = session.scalar(select(func.count()).select_from(flags).where(flags.as_of == as_of))
    return None, bool(planned)


def build_statements(
    settings: Settings,
    sessions: sessionmaker[Session],
    customers: Sequence[str],
    as_of: date,
    *,
    every_customer: bool = False,
) -> tuple[list[Statement], list[str]]:
    """Statements of these customers (or every customer with a balance), and who owes nothing."""
    with sessions() as session:
        first = session.scalar(select(func.min(models.Invoice.invoice_date)))
        if first is None:
            raise InputError("no Microsoft invoice is stored yet; run `pcsync sync` first")
        if as_of < first:
            raise InputError(
                f"--as-of {as_of}: before the first Microsoft invoice ({first}); give a later date"
            )
        names = dict(session.execute(select(models.Customer.id, models.Customer.name)).all())
        if every_customer:
            ids = sorted(names)
        else:
            resolved = resolve_customers(session, customers)
            ids = list(dict.fromkeys(resolved[given] for given in customers))
        charges = customer_charges(session, settings, ids, as_of)
        ledgers = build_ledgers(charges, _payments(session, ids), as_of)
        periods = {
            i: (start, end)
            for i, start, end in session.execute(
                select(
                    models.Invoice.id,
                    models.Invoice.billing_period_start,
                    models.Invoice.billing_period_end,
                ).where(models.Invoice.invoice_date <= as_of)
            )
        }
        microsoft_ids = frozenset(session.scalars(select(models.Invoice.id)))
        party = _party(settings)
        terms = _terms(settings)
        statements, nothing = [], []
        for customer_id in ids:
            own = [ledger for ledger in ledgers if ledger.customer_id == customer_id]
            owing = [ledger for ledger in own if ledger.balance != 0]
            if not owing:
                if not every_customer:
                    nothing.append(
                        f"{names.get(customer_id, customer_id)} ({customer_id}): nothing owed "
                        f"as of {as_of}; no statement written"
                    )
                continue
            for ledger in owing:
                invoice_ids = [c.invoice_id for c in ledger.charges]
                stage, known = _stage(session, customer_id, ledger.currency, as_of)
                statements.append(
                    build_statement(
                        ledger,
                        customer_name=names.get(customer_id, customer_id),
                        party=party,
                        terms=terms.for_customer(customer_id),
                        periods=periods,
                        lines=_line_summaries(session, customer_id, invoice_ids),
                        stage=stage,
                        stage_known=known,
                        invoice_ids=microsoft_ids,
                    )
                )
    if every_customer and not statements:
        nothing.append(f"no customer owes anything as of {as_of}; no statement written")
    return statements, nothing


def _party(settings: Settings) -> StatementParty:
    own = settings.statements
    return StatementParty(
        partner_name=own.partner_name,
        address=own.address,
        contact=own.contact,
        payment_instructions=settings.notifications.payment_instructions,
        show_microsoft_invoice=own.show_microsoft_invoice,
    )
