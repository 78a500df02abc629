"""The billed lines finance pivots on, and the margin per customer and per product.

The **Lines** table has one row per billed line of the Microsoft invoices of the
report's month (the month of the newest invoice dated on or before the as-of
date): the customer (name and tenant id), product, SKU, charge type, term and
billing cycle, charge period, quantity, Microsoft's unit price, the cost, what
the customer is charged for it before tax (the cost with the customer's markup,
``[billing] markup_percent`` or its override) and the margin. The **Margin**
table sums cost, charge and margin per customer and per product over those lines.
Amounts are exact Decimals; the margin table rounds once, after summing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconciliation.ledger import BillingTerms
from reconciliation.money import round_money
from sync.db.models import Invoice, LineItem
from sync.reports.tables import Column, Table

__all__ = ["lines_tables", "report_month"]

LINE_COLUMNS = (
    Column("customer_name", "Customer"),
    Column("customer_id", "Customer ID", "id"),
    Column("product", "Product"),
    Column("sku", "SKU", "id"),
    Column("charge_type", "Charge type"),
    Column("term", "Term and billing cycle"),
    Column("period_start", "Charge from", "date"),
    Column("period_end", "Charge to", "date"),
    Column("quantity", "Quantity", "decimal"),
    Column("currency", "Currency"),
    Column("unit_price", "Unit price (Microsoft)", "money"),
    Column("cost", "Cost", "money"),
    Column("charge", "Charge (net)", "money"),
    Column("margin", "Margin", "money"),
    Column("invoice_id", "Microsoft invoice", "id"),
)

MARGIN_COLUMNS = (
    Column("by", "By"),
    Column("name", "Customer or product"),
    Column("id", "ID", "id"),
    Column("currency", "Currency"),
    Column("lines", "Lines", "int"),
    Column("cost", "Cost", "money"),
    Column("charge", "Charge (net)", "money"),
    Column("margin", "Margin", "money"),
    Column("margin_percent", "Margin % of charge", "decimal"),
)


def report_month(session: Session, as_of: date) -> tuple[date, date] | None:
    """The first and last day of the month of the newest invoice dated by ``as_of``."""
    newest = session.scalar(
        select(Invoice.invoice_date)
        .where(Invoice.invoice_date <= as_of)
        .order_by(Invoice.invoice_date.desc())
        .limit(1)
    )
    if newest is None:
        return None
    first = newest.replace(day=1)
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first, date.fromordinal(following.toordinal() - 1)


def _term(term: str | None, frequency: str | None) -> str:
    """The line's term and billing cycle as Microsoft words them (their own columns)."""
    return ", ".join(part for part in (term, frequency) if part)


def _exact(value: Any) -> Decimal | None:
    """A stored number without the column's trailing zeros (``10``, not ``10.000000``)."""
    if value is None:
        return None
    number = Decimal(str(value))
    return number.quantize(Decimal(1)) if number == number.to_integral() else number.normalize()


def lines_tables(session: Session, terms: BillingTerms, as_of: date) -> list[Table]:
    """The Lines and Margin tables for the report of ``as_of`` (empty before any invoice)."""
    month = report_month(session, as_of)
    if month is None:
        return [Table("Lines", LINE_COLUMNS, []), Table("Margin", MARGIN_COLUMNS, [])]
    l = LineItem  # noqa: E741 - the one table this query reads
    columns = l.__table__.c  # the documented fields have a column each
    query = (
        select(
            l.customer_id,
            l.customer_name,
            l.product_name,
            l.product_id,
            l.sku_id,
            l.charge_type,
            l.charge_start_date,
            l.charge_end_date,
            l.quantity,
            l.unit_price,
            l.subtotal,
            l.currency,
            l.invoice_id,
            columns.term_and_billing_cycle,
            columns.billing_frequency,
        )
        .join(Invoice, Invoice.id == l.invoice_id)
        .where(Invoice.invoice_date.between(*month), l.customer_id.is_not(None))
        .order_by(l.customer_name, l.customer_id, l.product_name, l.charge_start_date, l.id)
    )
    rows = []
    for (cid, cname, product, product_id, sku, charge_type, start, end, quantity, price,
         subtotal, currency, invoice_id, term, frequency) in session.execute(query):  # fmt: skip
        cost = Decimal(str(subtotal))
        markup = terms.for_customer(str(cid)).markup_percent
        charge = cost * (1 + markup / 100)
        rows.append(
            {
                "customer_name": cname or cid,
                "customer_id": cid,
                "product": product or product_id or "",
                "product_id": product_id or product or "",
                "sku": sku or "",
                "charge_type": charge_type or "",
                "term": _term(term, frequency),
                "period_start": start,
                "period_end": end,
                "quantity": _exact(quantity),
                "currency": currency,
                "unit_price": _exact(price),
                "cost": cost,
                "charge": round_money(charge, currency),
                "margin": round_money(charge - cost, currency),
                "invoice_id": invoice_id,
                "_charge_exact": charge,
            }
        )
    return [Table("Lines", LINE_COLUMNS, rows), Table("Margin", MARGIN_COLUMNS, _margins(rows))]


def _margins(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cost, charge and margin summed per customer, then per product (largest margin first)."""
    result = []
    for by, key, name in (
        ("customer", "customer_id", "customer_name"),
        ("product", "product_id", "product"),
    ):
        sums: dict[tuple[str, str], list[Any]] = defaultdict(
            lambda: ["", 0, Decimal(0), Decimal(0)]
        )
        for line in lines:
            total = sums[(line[key], line["currency"])]
            total[0] = line[name]
            total[1] += 1
            total[2] += line["cost"]
            total[3] += line["_charge_exact"]
        group = []
        for (ident, currency), (label, count, cost, charge) in sums.items():
            margin = charge - cost
            group.append(
                {
                    "by": by,
                    "name": label,
                    "id": ident,
                    "currency": currency,
                    "lines": count,
                    "cost": round_money(cost, currency),
                    "charge": round_money(charge, currency),
                    "margin": round_money(margin, currency),
                    "margin_percent": (margin * 100 / charge).quantize(Decimal("0.1"))
                    if charge
                    else None,
                }
            )
        result += sorted(group, key=lambda row: (-row["margin"], row["name"]))
    return result
