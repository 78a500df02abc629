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
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconciliation.ledger import BillingTerms
from reconciliation.money import round_money
from sync.db.models import Invoice, LineItem
from sync.reports.tables import Column, Table

__all__ = ["LINE_COLUMNS", "XLSX_LINES", "billed_lines", "lines_tables", "report_month"]

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


def _exact(number: Decimal | None) -> Decimal | None:
    """A stored number without the column's trailing zeros (``10``, not ``10.000000``)."""
    if number is None:
        return None
    return number.quantize(Decimal(1)) if number == number.to_integral() else number.normalize()


XLSX_LINES = 100_000  # more lines than this are in the CSV only (a sheet that size is slow)


def _query(month: tuple[date, date]) -> Any:
    l = LineItem  # noqa: E741 - the one table this query reads
    columns = l.__table__.c  # the documented fields have a column each
    return (
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


def billed_lines(session: Session, terms: BillingTerms, as_of: date) -> Iterator[dict[str, Any]]:
    """The rows of the Lines table, streamed from the database in order."""
    month = report_month(session, as_of)
    if month is None:
        return
    result = session.execute(_query(month), execution_options={"yield_per": 5000})
    for (cid, cname, product, product_id, sku, charge_type, start, end, quantity, price,
         subtotal, currency, invoice_id, term, frequency) in result:  # fmt: skip
        cost: Decimal = subtotal  # a Money column: Decimal on SQLite and PostgreSQL alike
        markup = terms.for_customer(str(cid)).markup_percent
        charge = cost * (1 + markup / 100)
        yield {
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


def lines_tables(session: Session, terms: BillingTerms, as_of: date) -> tuple[Table, Table, int]:
    """The Lines table (its first ``XLSX_LINES`` rows), the Margin table over every line,
    and how many lines there are."""
    kept: list[dict[str, Any]] = []
    margins = _Margins()
    count = 0
    for count, line in enumerate(billed_lines(session, terms, as_of), start=1):
        margins.add(line)
        if count <= XLSX_LINES:
            kept.append(line)
    return (
        Table("Lines", LINE_COLUMNS, kept),
        Table("Margin", MARGIN_COLUMNS, margins.rows()),
        count,
    )


class _Margins:
    """Cost, charge and margin summed per customer and per product, one line at a time."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str, str], list[Any]] = defaultdict(
            lambda: ["", 0, Decimal(0), Decimal(0)]
        )

    def add(self, line: dict[str, Any]) -> None:
        for by, key, name in (
            ("customer", "customer_id", "customer_name"),
            ("product", "product_id", "product"),
        ):
            total = self.sums[(by, line[key], line["currency"])]
            total[0] = line[name]
            total[1] += 1
            total[2] += line["cost"]
            total[3] += line["_charge_exact"]

    def rows(self) -> list[dict[str, Any]]:
        """Per customer, then per product; largest margin first."""
        result = []
        for by in ("customer", "product"):
            group = []
            for (kind, ident, currency), (label, count, cost, charge) in self.sums.items():
                if kind != by:
                    continue
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
