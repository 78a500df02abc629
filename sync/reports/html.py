"""The HTML report: one self-contained file (inline CSS, inline SVG charts, no fetches).

First what to do — who to suspend, call or reactivate, riskiest first — then the
headline figures, an aging chart, the top overdue customers, and the tables
(customers, Microsoft invoices, payments, findings, changes made). Amounts have
thousands separators and the currency's decimals. Every piece of user data goes
through Jinja2's autoescaping; the SVG is built here with escaped labels.
Readable on a laptop, and printed (landscape): tables wrap to the page instead of
scrolling, so no column is cut off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import Any

from jinja2 import Environment, Undefined
from markupsafe import Markup

from reconciliation.document import CustomerRow, InvoiceRow
from reconciliation.money import minor_unit, round_money
from reconciliation.policy import Flag
from sync.reports.data import ReportData

__all__ = ["to_html"]

BUCKETS = (
    ("current", "Current"),
    ("1-30", "1–30"),
    ("31-60", "31–60"),
    ("61-90", "61–90"),
    ("over_90", "Over 90"),
)
COLOURS = ("#4c78a8", "#f2b134", "#e4572e", "#a23b72", "#3b1f2b")

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;
background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.muted{color:#5b6475}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px;margin-top:16px}
.card{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:12px 14px}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6475}
.card .value{font-size:18px;font-weight:600;margin-top:4px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
.panel{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:12px}
@media screen{.panel{overflow-x:auto}}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.detail{overflow-wrap:anywhere;min-width:16em}
td.detail ul{margin:0;padding-left:16px}
h3{font-size:15px;margin:16px 0 6px}
.risk{font-weight:600}
.complete{color:#1f6f3a;margin:4px 0}
.incomplete{background:#fdecea;border:1px solid #e0a39b;border-radius:8px;padding:8px 12px;
margin:8px 0}
@page{size:A4 landscape;margin:10mm}
@media print{body{background:#fff;font-size:11px}main{padding:0;max-width:none}
.panel,.card{border-color:#bbb}.panel{padding:4px;overflow:visible}
.charts{grid-template-columns:1fr 1fr}
table{font-size:9px;table-layout:auto}
th,td{white-space:normal;overflow-wrap:anywhere;padding:3px 4px}
th{position:static}h2,h3{break-after:avoid}tr{break-inside:avoid}}
</style></head>
<body><main>
<h1>{{ title }}</h1>
{% if completeness %}{% if completeness.complete %}
<div class="complete">Microsoft's data complete as of {{ completeness.complete_as_of }} UTC</div>
{% else %}<div class="incomplete"><strong>Incomplete:</strong>
{% if completeness.latest_run %}sync run {{ completeness.latest_run }} ended
{{ completeness.latest_status }}; these figures lack:<ul>
{% for m in completeness.missing %}<li>{{ m.unit }} {{ m.key }}: {{ m.reason }}</li>{% endfor %}
</ul>{% else %}no sync has run.{% endif %}</div>{% endif %}{% endif %}
<div class="muted">As of {{ as_of }} · {{ customers|length }} customer balances ·
{{ invoices|length }} Microsoft invoices · {{ findings|length }} findings</div>
<h2 id="actions">Actions</h2>
{% if plan_missing %}<p class="muted">The collections plan was not run for this report.</p>
{% else %}{% for group in action_groups %}<h3>{{ group.title }} ({{ group.rows|length }})</h3>
{% if group.rows %}<div class="panel"><table><thead><tr><th>Customer</th><th>Contact</th>
<th class="num">Overdue</th><th class="num">Days overdue</th><th>Stage</th>
<th>{{ group.status }}</th><th>Evidence</th></tr></thead><tbody>
{% for f in group.rows %}<tr><td>{{ f.customer_name }}</td><td>{{ f.contact or "unknown" }}</td>
<td class="num risk">{{ f.overdue_amount|money(f.currency) }} {{ f.currency }}</td>
<td class="num">{{ f.days_overdue }}</td><td>{{ f.stage or "" }}</td><td>{{ f.status }}</td>
<td class="detail"><ul>{% for r in f.reasons %}<li>{{ r }}</li>{% endfor %}</ul></td></tr>
{% endfor %}</tbody></table></div>{% else %}<p class="muted">Nobody.</p>{% endif %}
{% endfor %}{% endif %}
<div class="cards">
{% for card in cards %}<div class="card"><div class="label">{{ card.label }}</div>
<div class="value">{{ card.value }}</div>{% if card.note %}<div class="muted">{{ card.note }}</div>
{% endif %}</div>{% endfor %}
</div>
<h2>Aging and top overdue customers</h2>
<div class="charts">{% for chart in charts %}<div class="panel">{{ chart }}</div>{% endfor %}</div>
<h2>Customers</h2>
<div class="panel"><table><thead><tr><th>Customer</th><th>Currency</th>
<th class="num">Net</th><th class="num">Tax</th>
<th class="num">Charged</th><th class="num">Paid</th><th class="num">Balance</th>
<th class="num">Overdue</th><th class="num">Days overdue</th><th class="num">Owed to Microsoft</th>
<th class="num">Exposure</th><th class="num">Microsoft tax on it</th></tr></thead><tbody>
{% for c in customers %}<tr><td>{{ c.customer_name }}</td><td>{{ c.currency }}</td>
<td class="num">{{ c.charged_net|money(c.currency) }}</td>
<td class="num">{{ c.charged_tax|money(c.currency) }}</td>
<td class="num">{{ c.charged|money(c.currency) }}</td>
<td class="num">{{ c.paid|money(c.currency) }}</td>
<td class="num">{{ c.balance|money(c.currency) }}</td>
<td class="num">{{ c.overdue_amount|money(c.currency) }}</td>
<td class="num">{{ c.days_overdue }}</td>
<td class="num">{{ c.owed_to_microsoft|money(c.currency) }}</td>
<td class="num">{{ c.exposure|money(c.currency) }}</td>
<td class="num">{{ c.exposure_microsoft_tax|money(c.currency) }}</td></tr>{% endfor %}
</tbody></table></div>
<h2>Microsoft invoices</h2>
<div class="panel"><table><thead><tr><th>Invoice</th><th>Date</th><th>Currency</th>
<th class="num">Total</th><th class="num">Lines</th><th class="num">Difference</th>
<th class="num">Paid</th><th>Due</th><th class="num">Outstanding</th></tr></thead><tbody>
{% for i in invoices %}<tr><td>{{ i.invoice_id }}{% if i.amends %}
<br><small>amends {{ i.amends }}</small>{% endif %}</td><td>{{ i.invoice_date }}</td>
<td>{{ i.currency }}</td><td class="num">{{ i.total|money(i.currency) }}</td>
<td class="num">{{ i.lines_total|money(i.currency) }}</td>
<td class="num">{{ i.difference|money(i.currency) }}</td>
<td class="num">{{ i.paid|money(i.currency) }}</td>
<td>{{ i.due_date }}</td><td class="num">{{ i.outstanding|money(i.currency) }}</td></tr>{% endfor %}
</tbody></table></div>
<h2>Payments</h2>
<div class="panel"><table><thead><tr><th>Date</th><th>Customer</th><th>Reference</th>
<th>Currency</th><th class="num">Amount</th><th class="num">Applied</th>
<th class="num">Unapplied</th><th>Applied to invoices</th></tr></thead><tbody>
{% for p in payments %}<tr><td>{{ p.payment_date }}</td><td>{{ p.customer_name }}</td>
<td>{{ p.reference }}</td><td>{{ p.currency }}</td>
<td class="num">{{ p.amount|money(p.currency) }}</td>
<td class="num">{{ p.applied|money(p.currency) }}</td>
<td class="num">{{ p.unapplied|money(p.currency) }}</td>
<td class="detail">{{ p.applied_to|join(", ") }}</td></tr>
{% else %}<tr><td colspan="8">No payments.</td></tr>{% endfor %}
</tbody></table></div>
{% if margin %}<h2>Margin</h2>
<div class="panel"><table><thead><tr><th>By</th><th>Customer or product</th><th>Currency</th>
<th class="num">Lines</th><th class="num">Cost</th><th class="num">Charge (net)</th>
<th class="num">Margin</th><th class="num">Margin %</th></tr></thead><tbody>
{% for m in margin %}<tr><td>{{ m.by }}</td><td>{{ m.name }}</td><td>{{ m.currency }}</td>
<td class="num">{{ "{:,}".format(m.lines) }}</td>
<td class="num">{{ m.cost|money(m.currency) }}</td>
<td class="num">{{ m.charge|money(m.currency) }}</td>
<td class="num">{{ m.margin|money(m.currency) }}</td>
<td class="num">{{ "" if m.margin_percent is none else m.margin_percent }}</td></tr>{% endfor %}
</tbody></table></div>{% endif %}
<h2>Findings</h2>
<div class="panel"><table><thead><tr><th>Finding</th><th>Invoice</th><th>Customer</th>
<th class="num">Amount</th><th>Detail</th></tr></thead><tbody>
{% for f in findings %}<tr><td>{{ f.kind }}</td><td>{{ f.invoice_id or "" }}</td>
<td>{{ names.get(f.customer_id, f.customer_id or "") }}</td>
<td class="num">{{ f.amount|money(f.currency or "USD") }} {{ f.currency or "" }}</td>
<td class="detail">{{ f.detail }}</td></tr>{% else %}<tr><td colspan="5">No findings.</td></tr>
{% endfor %}</tbody></table></div>
{% if actions %}<h2>Changes made at Microsoft</h2>
<div class="panel"><table><thead><tr><th>When (UTC)</th><th>By</th><th>Customer</th>
<th>Subscription</th><th>Action</th><th>Result</th><th>Status</th><th>Detail</th></tr></thead><tbody>
{% for a in actions %}<tr><td>{{ a.when }}</td><td>{{ a.requested_by }}</td>
<td>{{ a.customer_name }}</td><td>{{ a.subscription_id }}</td><td>{{ a.action }}</td>
<td>{{ a.result }}</td><td>{{ a.status_before or "" }} → {{ a.status_after or "" }}</td>
<td class="detail">{{ a.error or "" }}</td></tr>{% endfor %}
</tbody></table></div>{% endif %}
</main></body></html>
"""


def _money(value: Decimal | Undefined | None, currency: str) -> str:
    """An amount with thousands separators and the currency's decimals; empty when unknown
    (a reconciliation stored before the column existed)."""
    if value is None or isinstance(value, Undefined):
        return ""
    places = minor_unit(currency)
    return f"{round_money(value, currency):,.{places}f}"


def _sum_by_currency(rows: list[tuple[str, Decimal]]) -> str:
    """Amounts (currency, amount) summed per currency: ``1,234.50 EUR · 10.00 USD``."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in rows:
        totals[currency] += amount
    return " · ".join(f"{_money(totals[c], c)} {c}" for c in sorted(totals)) or "0"


_GROUPS = (
    ("suspend", "Suspend", "Approval"),
    ("follow_up", "Call", "Notice"),
    ("reactivate", "Reactivate", "Why"),
)


def _action_groups(data: ReportData) -> list[dict[str, Any]]:
    """Who to suspend, call and reactivate, riskiest (amount × days overdue) first."""
    contacts = data.contacts or {}
    approvals = data.approvals or {}

    def risk(flag: Flag) -> Decimal:
        return data.overdue(flag) * flag.days_overdue

    groups = []
    for action, title, status in _GROUPS:
        rows = []
        for flag in sorted(
            (f for f in data.flags or [] if f.action == action),
            key=lambda f: (-risk(f), f.customer_name),
        ):
            if action == "suspend":
                state = approvals.get(flag.customer_id, "awaiting approval")
            elif action == "follow_up":
                state = "notice due at this stage"
            else:
                state = "suspended by pcsync, no longer at a suspend stage"
            rows.append(
                {
                    "customer_name": flag.customer_name,
                    "currency": flag.currency,
                    "overdue_amount": data.overdue(flag),
                    "days_overdue": flag.days_overdue,
                    "stage": flag.stage,
                    "reasons": flag.reasons,
                    "contact": contacts.get(flag.customer_id),
                    "status": state,
                }
            )
        groups.append({"title": title, "status": status, "rows": rows})
    return groups


def _bars(title: str, items: list[tuple[str, Decimal, str]]) -> Markup:
    """A horizontal bar chart as inline SVG; labels are escaped here."""
    width, row_height, label_width = 520, 26, 190
    height = 34 + row_height * max(1, len(items))
    top = max((value for _, value, _ in items), default=Decimal(0)) or Decimal(1)
    parts = [
        f'<svg role="img" width="100%" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    for n, (label, value, colour) in enumerate(items):
        y = 30 + n * row_height
        bar = int((width - label_width - 110) * (value / top)) if value > 0 else 0
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(label[:28])}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{bar}" height="16" fill="{colour}"/>'
            f'<text x="{label_width + bar + 6}" y="{y + 14}" font-size="12">{value:,}</text>'
        )
    if not items:
        parts.append('<text x="0" y="46" font-size="12">Nothing overdue.</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label above is escaped


def _charts(customers: Sequence[CustomerRow]) -> list[Markup]:
    charts = []
    for currency in sorted({c.currency for c in customers}):
        own = [c for c in customers if c.currency == currency]
        buckets = [
            (
                f"{label} ({currency})",
                sum((c.aging[key] for c in own), Decimal(0)),
                COLOURS[n],
            )
            for n, (key, label) in enumerate(BUCKETS)
        ]
        charts.append(_bars(f"Aging, {currency}", buckets))
        top = sorted(own, key=lambda c: c.overdue_amount, reverse=True)[:8]
        overdue = [
            (c.customer_name, c.overdue_amount, "#e4572e") for c in top if c.overdue_amount > 0
        ]
        charts.append(_bars(f"Top overdue customers, {currency}", overdue))
    return charts


def _cards(data: ReportData) -> list[dict[str, Any]]:
    customers = data.reconciled.customers
    open_invoices: list[InvoiceRow] = [i for i in data.reconciled.invoices if i.outstanding > 0]
    next_due = min((i.due_date for i in open_invoices), default=None)
    flags = data.flags
    return [
        {
            "label": "Owed to Microsoft",
            "value": _sum_by_currency([(i.currency, i.outstanding) for i in open_invoices]),
            "note": f"next due {next_due}" if next_due else "nothing outstanding",
        },
        {
            "label": "Receivables",
            "value": _sum_by_currency([(c.currency, c.balance) for c in customers]),
        },
        {
            "label": "Overdue",
            "value": _sum_by_currency([(c.currency, c.overdue_amount) for c in customers]),
            "note": f"{sum(1 for c in customers if c.days_overdue > 0)} customers",
        },
        {
            "label": "Exposure",
            "value": _sum_by_currency([(c.currency, c.exposure) for c in customers]),
            "note": "Microsoft's pre-tax cost of unpaid charges",
        },
        {
            "label": "Customers to suspend",
            "value": str(sum(1 for f in flags if f.action == "suspend"))
            if flags is not None
            else "—",
            "note": None if flags is not None else "collections plan not run",
        },
    ]


def to_html(data: ReportData, title: str) -> str:
    """The whole report as one HTML page."""
    reconciled = data.reconciled
    environment = Environment(autoescape=True, keep_trailing_newline=True)
    environment.filters["money"] = _money
    return environment.from_string(_TEMPLATE).render(
        plan_missing=data.flags is None,
        action_groups=_action_groups(data),
        payments=reconciled.payments,
        margin=data.margin,
        title=title,
        as_of=reconciled.as_of,
        cards=_cards(data),
        charts=_charts(reconciled.customers),
        customers=reconciled.customers,
        invoices=reconciled.invoices,
        findings=reconciled.findings,
        actions=data.changes,
        completeness=data.completeness,
        names=reconciled.customer_names(),
    )
