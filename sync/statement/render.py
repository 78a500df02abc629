"""A statement as JSON and CSV for accounting tools, and as one printable HTML page.

Pure: a :class:`~reconciliation.statement.Statement` in, text out. Amounts are the
statement's exact decimals; text is escaped for where it lands (Jinja2 autoescaping
in HTML, formula-neutralised cells in CSV).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from jinja2 import Environment

from reconciliation.money import money_text
from reconciliation.statement import Statement, quantity_text
from sync.reports.render import money_shown, neutralise

__all__ = ["FORMATS", "render_csv", "render_html", "render_json"]

FORMATS = ("html", "csv", "json")


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

_AMOUNT_COLUMNS = frozenset(("quantity", "unit_price", "net", "tax", "gross", "amount", "open"))


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
                    "quantity": "" if product.quantity is None else quantity_text(product.quantity),
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
        writer.writerow(
            {
                # An amount is the statement's own decimal text ("-40.00"), kept a number.
                key: value if key in _AMOUNT_COLUMNS else neutralise(value)
                for key, value in {**head, **row}.items()
            }
        )
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
th { overflow-wrap: normal; word-break: normal; }
.d { white-space: nowrap; }
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
<td>{% if c.period_start %}<span class="d">{{ c.period_start }}</span> – <span class="d">{{ c.period_end }}</span>{% endif %}</td>
<td><span class="d">{{ c.due_date }}</span>{% if c.overdue %} ({{ c.days_past_due }} days overdue){% endif %}</td>
<td class="n">{{ m(c.net) }}</td><td class="n">{{ m(c.tax) }}</td><td class="n">{{ m(c.gross) }}</td>
<td>{% for p in c.paid %}{{ m(p.amount) }} on <span class="d">{{ p.paid_on }}</span> ({{ p.reference }})<br>{% endfor %}</td>
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
        return "" if value is None else quantity_text(value)

    return environment.from_string(_TEMPLATE).render(
        s=statement, m=m, q=q, stage=_stage_text(statement), bucket_names=_BUCKET_NAMES
    )
