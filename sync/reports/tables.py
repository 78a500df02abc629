"""The report's tables, built from the typed rows of a stored reconciliation (``ReportData``).

A table is a name, typed columns and rows. Column kinds tell the renderers how
to write a cell: ``text`` and ``id`` stay text (Excel must not turn a GUID or
a long number into something else), ``money`` is a Decimal in the row's
currency, ``decimal`` an exact number (a quantity), ``date`` a calendar date,
``datetime`` a moment (UTC), ``int`` a count.
Wherever a row names a customer by id, the customer's name stands beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

from reconciliation.document import CustomerRow
from sync.reports.data import ReportData

__all__ = ["Column", "Table", "report_tables"]

Kind = Literal["text", "id", "money", "date", "datetime", "int", "decimal"]


@dataclass(frozen=True)
class Column:
    """A column: its key in the rows, its header, and how to write it."""

    key: str
    header: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Table:
    """A named table; every row is a dict keyed by the columns' keys."""

    name: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


def _cells(row: Any) -> dict[str, Any]:
    """A typed row's fields as a table row (the renderers pick the columns they show)."""
    return {f.name: getattr(row, f.name) for f in fields(row)}


def _customers(data: ReportData) -> Table:
    columns: tuple[Column, ...] = (
        Column("customer_id", "Customer ID", "id"),
        Column("customer_name", "Customer"),
        Column("currency", "Currency"),
        Column("microsoft_cost", "Microsoft cost", "money"),
        Column("charged_net", "Charged (net)", "money"),
        Column("charged_tax", "Tax", "money"),
        Column("charged", "Charged", "money"),  # gross: tax included
        Column("paid", "Paid", "money"),
        Column("unapplied_credit", "Credit", "money"),
        Column("balance", "Balance", "money"),
        Column("overdue_amount", "Overdue", "money"),
        Column("days_overdue", "Days overdue", "int"),
        Column("owed_to_microsoft", "Owed to Microsoft", "money"),
        Column("exposure", "Exposure", "money"),
        Column("exposure_microsoft_tax", "Microsoft tax on exposure", "money"),
    )
    actions = {(f.customer_id, f.currency): f.action for f in data.flags or []}
    columns = (*columns, Column("action", "Action"))
    # A reconciliation stored before a column existed has None there: an empty cell.
    rows = [
        {**_cells(c), "action": actions.get((c.customer_id, c.currency), "none")}
        for c in data.reconciled.customers
    ]
    return Table("Customers", columns, rows)


def _aging(data: ReportData) -> Table:
    buckets = ("current", "1-30", "31-60", "61-90", "over_90")
    columns = (
        Column("customer_id", "Customer ID", "id"),
        Column("customer_name", "Customer"),
        Column("currency", "Currency"),
        *(
            Column(b, {"current": "Current", "over_90": "Over 90"}.get(b, f"{b} days"), "money")
            for b in buckets
        ),
        Column("balance", "Balance", "money"),
    )
    rows = [
        {
            "customer_id": c.customer_id,
            "customer_name": c.customer_name,
            "currency": c.currency,
            "balance": c.balance,
            **{b: c.aging[b] for b in buckets},
        }
        for c in data.reconciled.customers
    ]
    return Table("Aging", columns, rows)


def _findings(data: ReportData) -> Table:
    columns = (
        Column("kind", "Finding"),
        Column("customer_id", "Customer ID", "id"),
        Column("customer_name", "Customer"),
        Column("subscription_id", "Subscription ID", "id"),
        Column("product", "Product"),
        Column("invoice_id", "Invoice", "id"),
        Column("amount", "Amount", "money"),
        Column("currency", "Currency"),
        Column("detail", "Detail"),
    )
    names = data.reconciled.customer_names()
    products = data.products or {}  # a bare reconciliation names no products
    rows = [
        {
            **_cells(f),
            "customer_name": names.get(f.customer_id) if f.customer_id else None,
            "product": products.get(f.subscription_id) if f.subscription_id else None,
        }
        for f in data.reconciled.findings
    ]
    return Table("Findings", columns, rows)


def _invoices(data: ReportData) -> Table:
    columns = (
        Column("invoice_id", "Invoice", "id"),
        Column("amends", "Amends", "id"),
        Column("invoice_date", "Date", "date"),
        Column("currency", "Currency"),
        Column("total", "Total", "money"),
        Column("lines_total", "Lines", "money"),
        Column("difference", "Difference", "money"),
        Column("paid", "Paid", "money"),
        Column("due_date", "Due", "date"),
        Column("outstanding", "Outstanding", "money"),
        Column("days_to_due", "Days to due", "int"),
    )
    rows = [_cells(i) for i in data.reconciled.invoices]
    return Table("Microsoft invoices", columns, rows)


def _summary(data: ReportData) -> Table:
    columns = (
        Column("currency", "Currency"),
        Column("charged_net", "Charged (net)", "money"),
        Column("charged_tax", "Tax", "money"),
        Column("charged", "Charged", "money"),  # gross: tax included
        Column("paid", "Paid", "money"),
        Column("balance", "Receivables", "money"),
        Column("overdue_amount", "Overdue", "money"),
        Column("owed_to_microsoft", "Owed to Microsoft", "money"),
        Column("exposure", "Exposure", "money"),
        Column("exposure_microsoft_tax", "Microsoft tax on exposure", "money"),
        Column("overdue_customers", "Overdue customers", "int"),
    )
    summed = [k.key for k in columns if k.kind == "money"]
    totals: dict[str, dict[str, Any]] = {}
    for c in data.reconciled.customers:
        row = totals.setdefault(
            c.currency,
            {
                "currency": c.currency,
                "overdue_customers": 0,
                **{k.key: Decimal(0) for k in columns if k.kind == "money"},
            },
        )
        for key in summed:
            value = _amount(c, key)
            if row[key] is not None and value is not None:
                row[key] += value
            else:  # a reconciliation stored before the column existed: no total
                row[key] = None
        row["overdue_customers"] += 1 if c.days_overdue > 0 else 0
    return Table("Summary", columns, [totals[k] for k in sorted(totals)])


def _amount(row: CustomerRow, key: str) -> Decimal | None:
    value: Decimal | None = getattr(row, key)
    return value


def _payments(data: ReportData) -> Table:
    columns = (
        Column("reference", "Reference", "id"),
        Column("customer_id", "Customer ID", "id"),
        Column("customer_name", "Customer"),
        Column("payment_date", "Date", "date"),
        Column("currency", "Currency"),
        Column("amount", "Amount", "money"),
        Column("applied", "Applied", "money"),
        Column("unapplied", "Unapplied", "money"),
        Column("applied_to", "Applied to invoices", "id"),
    )
    rows = [{**_cells(p), "applied_to": " ".join(p.applied_to)} for p in data.reconciled.payments]
    return Table("Payments", columns, rows)


def _flags(data: ReportData) -> Table:
    columns = (
        Column("customer_id", "Customer ID", "id"),
        Column("customer_name", "Customer"),
        Column("currency", "Currency"),
        Column("action", "Action"),
        Column("stage", "Stage"),
        Column("overdue_amount", "Overdue", "money"),
        Column("days_overdue", "Days overdue", "int"),
        Column("reasons", "Evidence"),
    )
    rows = [
        {**_cells(f), "overdue_amount": data.overdue(f), "reasons": "; ".join(f.reasons)}
        for f in data.flags or []
    ]
    return Table("Flags & actions", columns, rows)


def _changes(data: ReportData) -> Table:
    columns = (
        Column("requested_at", "When (UTC)", "datetime"),
        Column("requested_by", "By"),
        Column("customer_id", "Customer ID", "id"),
        Column("customer_name", "Customer"),
        Column("subscription_id", "Subscription ID", "id"),
        Column("action", "Action"),
        Column("result", "Result"),
        Column("status_before", "Status before"),
        Column("status_after", "Status after"),
        Column("ms_request_id", "Microsoft request ID", "id"),
        Column("error", "Error"),
    )
    rows = [_cells(a) for a in data.changes]
    return Table("Suspensions", columns, rows)


def report_tables(data: ReportData) -> list[Table]:
    """Summary, Customers, Aging, Findings, Microsoft invoices, Payments, Flags & actions and
    Suspensions (what pcsync changed at Microsoft)."""
    return [
        _summary(data),
        _customers(data),
        _aging(data),
        _findings(data),
        _invoices(data),
        _payments(data),
        _flags(data),
        _changes(data),
    ]
