"""The daemon's report job: write the day's reports, mail them to finance once per date.

``deliver_report`` is what the ``report`` job runs after the scheduled reconcile: it
writes every format of ``pcsync report`` for the date to ``[reports] out_dir`` and, when
``[reports] email_to`` names finance addresses, sends one message — the HTML report as
the body (a plain-text part with the headline figures for mail readers without HTML),
the XLSX attached — through ``[notifications.smtp]``, or writes it as an ``.eml`` file
beside the reports when there is no SMTP server, as notices do.

It is recorded as a ``report`` run whose ``params`` hold the as-of date and whose
``counts`` say what went out (``mail: sent`` or ``written``). A date whose message went
out in an earlier run is not mailed again: rerunning the job, or a second daemon taking
over the same morning, rewrites the files and sends nothing. The count is stored when
the run ends, so a process killed between the SMTP server's answer and that moment
sends the message once more on its next run — a duplicate, never a loss.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.document import Reconciled
from reconciliation.money import round_money
from reconciliation.text import one_line
from sync.collections import plan_collections
from sync.config import Settings
from sync.db.models import ReconciliationRun, Run
from sync.errors import NoticeError
from sync.mail import send_smtp
from sync.report import FORMATS, write_reports
from sync.reports.staged import staged
from sync.runtime.runs import Trigger, recorded_run
from sync.webhook import ChatMessage

__all__ = ["REPORT_KIND", "Delivery", "deliver_report", "headline_facts"]

REPORT_KIND = "report"
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True)
class Delivery:
    """What one report run did.

    ``mailed`` is where the message went (``smtp``, ``eml``), ``already`` when an earlier
    run sent it for the same date, or ``none`` without ``[reports] email_to``.
    """

    as_of: date
    files: tuple[Path, ...]
    mailed: str
    recipients: tuple[str, ...]
    eml: Path | None
    message: ChatMessage


def headline_facts(
    reconciled: Reconciled | None, to_suspend: int, to_follow_up: int
) -> tuple[tuple[str, str], ...]:
    """The figures a controller reads first: per currency what is owed and overdue, and
    how many customers to act on, as (label, value) with thousands separators."""
    customers = reconciled.customers if reconciled is not None else ()
    owed: dict[str, Decimal] = defaultdict(Decimal)
    overdue: dict[str, Decimal] = defaultdict(Decimal)
    for customer in customers:
        owed[customer.currency] += customer.balance
        overdue[customer.currency] += customer.overdue_amount
    facts = [("Customers", str(len({c.customer_id for c in customers})))]
    for currency in sorted(owed):
        facts.append((f"Balance ({currency})", f"{round_money(owed[currency], currency):,}"))
        facts.append((f"Overdue ({currency})", f"{round_money(overdue[currency], currency):,}"))
    facts.append(("To suspend", str(to_suspend)))
    facts.append(("To follow up", str(to_follow_up)))
    findings = len(reconciled.findings) if reconciled is not None else 0
    facts.append(("Findings", str(findings)))
    return tuple(facts)


def _mailed_before(sessions: sessionmaker[Session], as_of: date) -> bool:
    """Whether an earlier report run sent (or wrote) the message for ``as_of``."""
    with sessions() as session:
        runs = session.scalars(select(Run).where(Run.kind == REPORT_KIND)).all()
        return any(
            (run.params or {}).get("as_of") == as_of.isoformat()
            and ((run.counts or {}).get("mail") or {}).keys() & {"sent", "written"}
            for run in runs
        )


def _reconciled(
    sessions: sessionmaker[Session], reconciliation_id: int | None
) -> Reconciled | None:
    """The stored reconciliation's rows, or None when the reports had none."""
    with sessions() as session:
        row = session.get(ReconciliationRun, reconciliation_id) if reconciliation_id else None
        return Reconciled.from_document(row.document) if row is not None else None


def _compose(
    settings: Settings, as_of: date, facts: tuple[tuple[str, str], ...], files: tuple[Path, ...]
) -> EmailMessage:
    notifications, reports = settings.notifications, settings.reports
    html = next(p for p in files if p.suffix == ".html")
    xlsx = next(p for p in files if p.suffix == ".xlsx")
    message = EmailMessage()
    message["Subject"] = one_line(f"{reports.title} as of {as_of}")
    message["From"] = formataddr((one_line(notifications.sender_name), notifications.from_address))
    message["To"] = ", ".join(reports.email_to)
    if notifications.reply_to:
        message["Reply-To"] = notifications.reply_to
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = notifications.from_address.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    lines = [f"{reports.title} as of {as_of}", ""]
    lines += [f"{label}: {value}" for label, value in facts]
    lines += ["", f"The workbook is attached ({xlsx.name}); the full report is {html}."]
    message.set_content("\n".join(lines) + "\n")
    message.add_alternative(html.read_text(encoding="utf-8"), subtype="html")
    message.add_attachment(
        xlsx.read_bytes(), maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=xlsx.name
    )
    return message


def _write_eml(path: Path, message: EmailMessage) -> None:
    with staged("report mail") as out:  # whole, or not there: never a truncated message
        out.write(path, bytes(message))


def deliver_report(
    settings: Settings, sessions: sessionmaker[Session], as_of: date, trigger: Trigger = "schedule"
) -> Delivery:
    """Write every report format for ``as_of`` and mail it to finance unless already mailed."""
    reports = settings.reports
    with recorded_run(sessions, REPORT_KIND, trigger, {"as_of": as_of.isoformat()}) as run:
        written = write_reports(settings, sessions, as_of, FORMATS, reports.out_dir)
        files = tuple(written.files)
        run.count("report", "files", len(files))
        plan = plan_collections(settings, sessions, as_of, store=False)
        actions = [flag.action for flag in plan.flags]
        reconciled = _reconciled(sessions, written.reconciliation_id)
        facts = headline_facts(reconciled, actions.count("suspend"), actions.count("follow_up"))
        eml: Path | None = None
        if not reports.email_to:
            mailed = "none"
        elif _mailed_before(sessions, as_of):
            mailed = "already"
            run.count("mail", "already")
        else:
            message = _compose(settings, as_of, facts, files)
            if settings.notifications.smtp is not None:
                try:
                    send_smtp(settings.notifications.smtp, message)
                except NoticeError as exc:
                    raise NoticeError(
                        f"report mail via {exc}; the {as_of} reports are in {reports.out_dir} "
                        "but were not mailed, and the next scheduled run mails its own date "
                        "only: send these by hand once the SMTP settings work"
                    ) from exc
                mailed = "smtp"
                run.count("mail", "sent", len(reports.email_to))
            else:
                eml = reports.out_dir / f"pcsync-{as_of.isoformat()}-mail.eml"
                _write_eml(eml, message)
                mailed = "eml"
                run.count("mail", "written")
    html = next((p for p in files if p.suffix == ".html"), files[0])
    said = {
        "smtp": f"mailed to {', '.join(reports.email_to)}",
        "eml": f"mail written to {eml}",
        "already": "already mailed for this date",
        "none": "not mailed ([reports] email_to is empty)",
    }[mailed]
    chat = ChatMessage(
        text=f"pcsync report as of {as_of}: {len(files)} file(s) in {reports.out_dir}; {said}",
        title=f"{reports.title} as of {as_of}",
        facts=facts,
        link=str(html),
    )
    return Delivery(as_of, files, mailed, tuple(reports.email_to), eml, chat)
