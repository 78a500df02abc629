"""What a notice says and carries beyond its template: the customer's own charges,
the suspension date, the HTML alternative and the attachments.

A customer never saw Microsoft's invoice numbers, so a notice lists its overdue
charges as its statement shows them — the period, the products and the amount
still open — and attaches that statement (``sync.statement``) and the published
collections policy (``sync.collections.policy_doc``), both as HTML. The figures
are the statement's, which are the reconciliation's (tested there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import PcsyncError
from reconciliation.money import round_money
from reconciliation.statement import Statement
from sync.config import Settings
from sync.config.cron import crontab_trigger

__all__ = ["Attachment", "NoticeExtras", "charge_rows", "html_alternative", "suspension_date"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """A file attached to a notice."""

    filename: str
    content: str
    subtype: str = "html"


@dataclass
class NoticeExtras:
    """The statement and policy documents a collections round attaches to its notices."""

    settings: Settings
    sessions: sessionmaker[Session]
    as_of: date
    _statements: dict[tuple[str, str], Statement | None] = field(default_factory=dict)
    _policy: str | None = None

    def statement(self, customer_id: str, currency: str) -> Statement | None:
        """The customer's statement in ``currency`` as of the round's date, or None."""
        if (customer_id, currency) not in self._statements:
            from sync.statement import build_statements  # statements use the collections stages

            try:
                built, _ = build_statements(self.settings, self.sessions, [customer_id], self.as_of)
            except PcsyncError as exc:
                log.warning("statement of %s for its notice: %s", customer_id, exc)
                built = []
            for currency_ in {currency} | {s.currency for s in built}:
                self._statements[(customer_id, currency_)] = next(
                    (s for s in built if s.currency == currency_), None
                )
        return self._statements[(customer_id, currency)]

    def attachments(self, customer_id: str, currency: str) -> list[Attachment]:
        """The customer's statement (when it owes in ``currency``) and the published policy."""
        from sync.statement import render_html

        found: list[Attachment] = []
        statement = self.statement(customer_id, currency)
        if statement is not None:
            found.append(
                Attachment(f"statement-{self.as_of}-{currency}.html", render_html(statement))
            )
        policy = self._policy_html()
        if policy:
            found.append(Attachment("collections-policy.html", policy))
        return found

    def _policy_html(self) -> str:
        """The default published policy, rendered once per round (it is the same for all)."""
        if self._policy is None:
            from sync.collections.policy_doc import build_document, render

            try:
                self._policy = render(build_document(self.settings), "html")
            except PcsyncError as exc:
                log.warning("collections policy for the notices: %s", exc)
                self._policy = ""
        return self._policy


def charge_rows(statement: Statement) -> list[dict[str, str]]:
    """The statement's overdue charges as a notice lists them (no Microsoft invoice ids)."""
    c = statement.currency
    rows = []
    for charge in statement.charges:
        if not charge.overdue or charge.open <= 0:
            continue
        if charge.period_start and charge.period_end:
            period = f"{charge.period_start} to {charge.period_end}"
        else:
            period = f"charged {charge.charge_date}"
        products = ", ".join(dict.fromkeys(p.product for p in charge.products)) or charge.label
        rows.append(
            {
                "period": period,
                "products": products,
                "due_date": charge.due_date.isoformat(),
                "amount": str(round_money(charge.gross, c)),
                "unpaid": str(round_money(charge.open, c)),
                "invoice_id": charge.label,
            }
        )
    return rows


def suspension_date(settings: Settings, as_of: date) -> date:
    """The earliest day access can be suspended after a suspend notice of ``as_of``.

    A suspension waits for an approval and is made by a collections run, so the
    earliest is the next scheduled collections run after the notice's day (the day
    after when no collections run is scheduled: someone runs apply by hand).
    """
    schedule = settings.schedule
    day_after = as_of + timedelta(days=1)
    if not schedule.collections:
        return day_after
    zone = ZoneInfo(schedule.timezone)
    trigger = crontab_trigger(schedule.collections, zone)
    start = datetime.combine(day_after, time(), zone)
    fire = trigger.get_next_fire_time(None, start)
    return fire.date() if fire is not None else day_after


def html_alternative(subject: str, text: str) -> str:
    """The notice's text as a simple HTML page: paragraphs, and ``- `` lines as a list."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(subject)}</title></head>",
        "<body style='font-family:Arial,Helvetica,sans-serif;font-size:14px;max-width:42em'>",
    ]
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        items = [line.strip()[2:] for line in lines if line.strip().startswith("- ")]
        lead = [line for line in lines if not line.strip().startswith("- ")]
        if lead:
            parts.append("<p>" + "<br>".join(escape(line.strip()) for line in lead) + "</p>")
        if items:
            parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
