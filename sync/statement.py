"""``pcsync statement``: load a customer's ledger and lines, build the statement, write it.

The figures come from the same charges and payments the reconciliation uses
(``customer_charges`` and the stored payments, through ``build_ledgers``), so a
statement's balance, overdue amount and aging are the reconciliation's. The
products on each charge are Microsoft's lines of that invoice for that
customer, summed per product, SKU and unit price.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import InputError, OutputError
from reconciliation.ledger import Payment, build_ledgers
from reconciliation.money import money_text
from reconciliation.reports.render import money_shown, neutralise
from reconciliation.statement import LineSummary, Statement, StatementParty, build_statement
from sync.collections.approvals import resolve_customers
from sync.config import Settings
from sync.db import models
from sync.reconcile import _terms, customer_charges

__all__ = [
    "FORMATS",
    "StatementRun",
    "build_statements",
    "render_csv",
    "render_html",
    "write_statements",
]

FORMATS = ("html", "csv", "json")


@dataclass(frozen=True)
class StatementRun:
    """What ``pcsync statement`` did: the files written and customers with nothing owed."""

    files: list[Path]
    nothing_owed: list[str]  # one line per customer that got no statement


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
    """The customer's lines of these invoices, summed per product, SKU and unit price."""
    lines = models.LineItem
    keys = (lines.invoice_id, lines.product_name, lines.product_id, lines.sku_id, lines.unit_price)
    rows = session.execute(
        select(*keys, func.sum(lines.quantity), func.sum(lines.subtotal))
        .where(lines.invoice_id.in_(invoice_ids), lines.customer_id == customer_id)
        .group_by(*keys)
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
                    )
                )
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


# --- rendering ------------------------------------------------------------------------


def render_json(statement: Statement) -> str:
    """The statement document as stable JSON text."""
    return json.dumps(statement.document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_CSV_COLUMNS = (
    "section",
    "customer_id",
    "currency",
    "as_of",
    "charge",
    "date",
    "due_date",
    "product",
    "sku",
    "quantity",
    "unit_price",
    "net",
    "tax",
    "gross",
    "reference",
    "amount",
    "open",
    "detail",
)


def render_csv(statement: Statement) -> str:
    """One CSV of the statement: a row per charge, product, payment part and total.

    Amounts are exact decimal strings; text cells are kept from being read as formulas.
    """
    text = money_text(statement.currency)
    head = {"customer_id": statement.customer_id, "currency": statement.currency}
    head["as_of"] = statement.as_of.isoformat()
    rows: list[dict[str, str]] = []
    for charge in statement.charges:
        name = statement.charge_name(charge)
        rows.append(
            {
                "section": "charge",
                "charge": name,
                "date": charge.charge_date.isoformat(),
                "due_date": charge.due_date.isoformat(),
                "net": text(charge.net),
                "tax": text(charge.tax),
                "gross": text(charge.gross),
                "open": text(charge.open),
                "detail": f"{charge.days_past_due} days overdue" if charge.overdue else "",
            }
        )
        for product in charge.products:
            rows.append(
                {
                    "section": "product",
                    "charge": name,
                    "product": product.product,
                    "sku": product.sku,
                    "quantity": ""
                    if product.quantity is None
                    else str(product.quantity.normalize()),
                    "unit_price": "" if product.unit_price is None else text(product.unit_price),
                    "net": text(product.amount),
                }
            )
        for part in charge.paid:
            rows.append(
                {
                    "section": "paid",
                    "charge": name,
                    "date": part.paid_on.isoformat(),
                    "reference": part.reference,
                    "amount": text(part.amount),
                }
            )
    for payment in statement.payments:
        rows.append(
            {
                "section": "payment",
                "date": payment.paid_on.isoformat(),
                "reference": payment.reference,
                "amount": text(payment.amount),
                "detail": "; ".join(f"{lbl}: {text(a)}" for lbl, a in payment.applied_to)
                + (f"; credit: {text(payment.credit)}" if payment.credit else ""),
            }
        )
    totals = {
        "charged_net": statement.charged_net,
        "charged_tax": statement.charged_tax,
        "charged": statement.charged,
        "paid": statement.paid,
        "credit": statement.credit,
        "balance": statement.balance,
        "overdue_amount": statement.overdue_amount,
        **{f"aging_{bucket}": value for bucket, value in statement.aging.items()},
    }
    for key, value in totals.items():
        rows.append({"section": "total", "detail": key, "amount": text(value)})
    rows.append(
        {
            "section": "total",
            "detail": "collections_stage",
            "reference": _stage_text(statement),
        }
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: neutralise(value) for key, value in {**head, **row}.items()})
    return out.getvalue()


def _stage_text(statement: Statement) -> str:
    if not statement.stage_known:
        return f"none (no collections plan stored for {statement.as_of})"
    return statement.stage or "none"


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Statement — {{ s.customer_name }} — {{ s.currency }} — {{ s.as_of }}</title>
<style>
body { font: 11pt/1.4 system-ui, sans-serif; margin: 2em; color: #111; }
header, section { margin-bottom: 1.5em; }
.from { white-space: pre-line; }
table { border-collapse: collapse; width: 100%; table-layout: auto; }
th, td { border-bottom: 1px solid #ccc; padding: .25em .4em; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; word-break: break-word; }
td.n, th.n { text-align: right; white-space: nowrap; }
.products td { font-size: 9.5pt; color: #333; }
.overdue { color: #a00; font-weight: 600; }
.pre { white-space: pre-line; }
@page { size: A4; margin: 15mm; }
@media print {
  body { margin: 0; font-size: 9.5pt; }
  section { break-before: page; }
  section.first { break-before: auto; }
  tr, td, th { break-inside: avoid; }
  thead { display: table-header-group; }
  td.n, th.n { white-space: normal; }
}
</style></head><body>
<header>
<h1>Statement of account</h1>
<p class="from"><strong>{{ s.party.partner_name }}</strong>
{{ s.party.address }}
{{ s.party.contact }}</p>
<p>To: <strong>{{ s.customer_name }}</strong> ({{ s.customer_id }})<br>
Currency: {{ s.currency }} · As of {{ s.as_of }}</p>
<table><tbody>
<tr><th>Balance</th><td class="n">{{ m(s.balance) }}</td></tr>
<tr><th>Overdue</th><td class="n">{{ m(s.overdue_amount) }}{% if s.days_overdue %} ({{ s.days_overdue }} days){% endif %}</td></tr>
<tr><th>Credit</th><td class="n">{{ m(s.credit) }}</td></tr>
<tr><th>Collections stage</th><td>{{ stage }}</td></tr>
</tbody></table>
</header>
<section class="first"><h2>Aging</h2>
<table><thead><tr>{% for b in s.aging %}<th class="n">{{ bucket_names[b] }}</th>{% endfor %}</tr></thead>
<tbody><tr>{% for b, v in s.aging.items() %}<td class="n">{{ m(v) }}</td>{% endfor %}</tr></tbody></table>
</section>
<section><h2>Charges</h2>
<table><thead><tr><th>Charge</th><th>Period</th><th>Due</th><th class="n">Net</th><th class="n">Tax</th>
<th class="n">Gross</th><th>Paid</th><th class="n">Open</th></tr></thead><tbody>
{% for c in s.charges %}
<tr{% if c.overdue %} class="overdue"{% endif %}><td>{{ s.charge_name(c) }}</td>
<td>{% if c.period_start %}{{ c.period_start }} – {{ c.period_end }}{% endif %}</td>
<td>{{ c.due_date }}{% if c.overdue %} ({{ c.days_past_due }} days overdue){% endif %}</td>
<td class="n">{{ m(c.net) }}</td><td class="n">{{ m(c.tax) }}</td><td class="n">{{ m(c.gross) }}</td>
<td>{% for p in c.paid %}{{ m(p.amount) }} on {{ p.paid_on }} ({{ p.reference }})<br>{% endfor %}</td>
<td class="n">{{ m(c.open) }}</td></tr>
{% if c.products %}<tr class="products"><td colspan="8"><table><thead><tr><th>Product</th><th>SKU</th>
<th class="n">Quantity</th><th class="n">Unit price</th><th class="n">Amount (net)</th></tr></thead><tbody>
{% for p in c.products %}<tr><td>{{ p.product }}</td><td>{{ p.sku }}</td>
<td class="n">{{ q(p.quantity) }}</td><td class="n">{{ m(p.unit_price) }}</td><td class="n">{{ m(p.amount) }}</td></tr>
{% endfor %}</tbody></table></td></tr>{% endif %}
{% endfor %}
<tr><th colspan="3">Total</th><td class="n">{{ m(s.charged_net) }}</td><td class="n">{{ m(s.charged_tax) }}</td>
<td class="n">{{ m(s.charged) }}</td><td></td><td class="n">{{ m(s.balance + s.credit) }}</td></tr>
</tbody></table>
</section>
<section><h2>Payments received</h2>
{% if s.payments %}<table><thead><tr><th>Date</th><th>Reference</th><th class="n">Amount</th><th>Applied to</th>
<th class="n">Left as credit</th></tr></thead><tbody>
{% for p in s.payments %}<tr><td>{{ p.paid_on }}</td><td>{{ p.reference }}</td><td class="n">{{ m(p.amount) }}</td>
<td>{% for label, amount in p.applied_to %}{{ label }}: {{ m(amount) }}<br>{% endfor %}</td>
<td class="n">{{ m(p.credit) }}</td></tr>{% endfor %}
</tbody></table>{% else %}<p>No payments received.</p>{% endif %}
</section>
<section><h2>How to pay</h2>
<p class="pre">{{ s.party.payment_instructions or "Contact us for payment details." }}</p>
</section>
</body></html>
"""  # noqa: E501 - markup lines read better whole

_BUCKET_NAMES = {
    "current": "Not yet due",
    "1-30": "1–30 days",
    "31-60": "31–60 days",
    "61-90": "61–90 days",
    "over_90": "Over 90 days",
}


def render_html(statement: Statement) -> str:
    """One self-contained printable page; every value is escaped by Jinja2's autoescaping."""
    environment = Environment(autoescape=True, keep_trailing_newline=True)
    currency = statement.currency

    def m(value: Decimal | None) -> str:
        return "" if value is None else money_shown(value, currency)

    def q(value: Decimal | None) -> str:
        return "" if value is None else str(value.normalize())

    return environment.from_string(_TEMPLATE).render(
        s=statement, m=m, q=q, stage=_stage_text(statement), bucket_names=_BUCKET_NAMES
    )


# --- writing --------------------------------------------------------------------------


def _file_stem(statement: Statement) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", statement.customer_id)
    return f"statement-{safe}-{statement.currency}-{statement.as_of.isoformat()}"


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        with suppress(OSError):
            path.unlink()
        raise OutputError(
            f"statement {path}: cannot write it ({exc.strerror}); free space or fix the "
            "folder's permissions, then run the command again",
            path=str(path),
        ) from exc


def write_statements(
    settings: Settings,
    sessions: sessionmaker[Session],
    customers: Sequence[str],
    as_of: date,
    formats: Sequence[str],
    out_dir: Path,
    *,
    every_customer: bool = False,
) -> StatementRun:
    """Build the statements and write each in the chosen formats; nothing half-written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(
            f"--format: unknown format {unknown[0]!r}; use {', '.join(FORMATS)}"
            if unknown
            else f"--format: name at least one of {', '.join(FORMATS)}"
        )
    if not customers and not every_customer:
        raise InputError("name a customer (tenant id or primary domain), or give --all")
    statements, nothing = build_statements(
        settings, sessions, customers, as_of, every_customer=every_customer
    )
    if statements:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"--out: cannot use the folder {out_dir} ({exc.strerror or exc}); "
                "name a folder pcsync may write to"
            ) from exc
    renderers = {"json": render_json, "csv": render_csv, "html": render_html}
    files = []
    for statement in statements:
        for kind in formats:
            path = out_dir / f"{_file_stem(statement)}.{kind}"
            _write(path, renderers[kind](statement))
            files.append(path)
    return StatementRun(files, nothing)
