"""The report's tables, built from the ``pcsync reconcile --json`` document.

A table is a name, typed columns and rows. Column kinds tell the renderers how
to write a cell: ``text`` and ``id`` stay text (Excel must not turn a GUID or
a long number into something else), ``money`` is a Decimal in the row's
currency, ``decimal`` an exact number (a quantity), ``date`` a calendar date,
``datetime`` a moment (UTC), ``int`` a count.
Wherever a row names a customer by id, the customer's name stands beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

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


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _customers(document: dict[str, Any]) -> Table:
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
    actions = {(f["customer_id"], f["currency"]): f["action"] for f in document.get("flags") or []}
    columns = (*columns, Column("action", "Action"))
    rows = [
        {
            **c,
            # A document stored before a column existed leaves its cells empty.
            **{k: _money(c.get(k)) for k in (col.key for col in columns if col.kind == "money")},
            "action": actions.get((c["customer_id"], c["currency"]), "none"),
        }
        for c in document["customers"]
    ]
    return Table("Customers", columns, rows)


def _aging(document: dict[str, Any]) -> Table:
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
            "customer_id": c["customer_id"],
            "customer_name": c["customer_name"],
            "currency": c["currency"],
            "balance": _money(c["balance"]),
            **{b: _money(c["aging"][b]) for b in buckets},
        }
        for c in document["customers"]
    ]
    return Table("Aging", columns, rows)


def _findings(document: dict[str, Any]) -> Table:
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
    names = {c["customer_id"]: c["customer_name"] for c in document["customers"]}
    # ``subscriptions`` (id → product name) is added by the report; a bare document has none.
    products = document.get("subscriptions") or {}
    rows = [
        {
            **f,
            "customer_name": names.get(f["customer_id"]) if f.get("customer_id") else None,
            "product": products.get(f["subscription_id"]) if f.get("subscription_id") else None,
            "amount": _money(f["amount"]),
        }
        for f in document["findings"]
    ]
    return Table("Findings", columns, rows)


def _invoices(document: dict[str, Any]) -> Table:
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
    money = [c.key for c in columns if c.kind == "money"]
    rows = [
        {
            **i,
            **{k: _money(i[k]) for k in money},
            "invoice_date": date.fromisoformat(i["invoice_date"]),
            "due_date": date.fromisoformat(i["due_date"]),
        }
        for i in document["invoices"]
    ]
    return Table("Microsoft invoices", columns, rows)


def _summary(document: dict[str, Any]) -> Table:
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
    for c in document["customers"]:
        row = totals.setdefault(
            c["currency"],
            {
                "currency": c["currency"],
                "overdue_customers": 0,
                **{k.key: Decimal(0) for k in columns if k.kind == "money"},
            },
        )
        for key in summed:
            if row[key] is not None and c.get(key) is not None:
                row[key] += Decimal(c[key])
            else:  # a document stored before the column existed: no total
                row[key] = None
        row["overdue_customers"] += 1 if c["days_overdue"] > 0 else 0
    return Table("Summary", columns, [totals[k] for k in sorted(totals)])


def _payments(document: dict[str, Any]) -> Table:
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
    rows = [
        {
            **p,
            "payment_date": date.fromisoformat(p["payment_date"]),
            "amount": _money(p["amount"]),
            "applied": _money(p["applied"]),
            "unapplied": _money(p["unapplied"]),
            "applied_to": " ".join(p["applied_to"]),
        }
        for p in document.get("payments", [])
    ]
    return Table("Payments", columns, rows)


def _flags(document: dict[str, Any]) -> Table:
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
        {**f, "overdue_amount": _money(f["overdue_amount"]), "reasons": "; ".join(f["reasons"])}
        for f in document.get("flags") or []
    ]
    return Table("Flags & actions", columns, rows)


def _changes(document: dict[str, Any]) -> Table:
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
    rows = [
        {**a, "requested_at": datetime.fromisoformat(a["requested_at"])}
        for a in document.get("actions") or []
    ]
    return Table("Suspensions", columns, rows)


def report_tables(document: dict[str, Any]) -> list[Table]:
    """Summary, Customers, Aging, Findings, Microsoft invoices, Payments, Flags & actions and
    Suspensions (what pcsync changed at Microsoft)."""
    return [
        _summary(document),
        _customers(document),
        _aging(document),
        _findings(document),
        _invoices(document),
        _payments(document),
        _flags(document),
        _changes(document),
    ]
