"""Notices to customers: one message per customer, currency and stay at a stage.

Messages are plain text with an HTML alternative (and, from a collections round,
the customer's statement and the published policy attached: ``notice_parts``),
rendered from Jinja2 templates — ``<stage>.txt.j2``, else
``<action>.txt.j2`` — looked up first in ``[notifications] templates_dir``,
then among the shipped defaults. A template's first line is ``Subject: …``.
With ``[notifications.smtp]`` they are sent over STARTTLS (credentials from
the environment); otherwise they are written as ``.eml`` files for a person
to send. A notice is recorded against the flag it was sent for — before it goes out,
so a crash never sends it twice — and a customer hears once per stage, and
again only when it reaches another stage.

Names and addresses come from Partner Center as sent: the headers get them on
one line without control characters, and a billing address that is not one
address (a CR/LF, a list, a stray space) skips that customer's notice with a
logged and audited reason while the others go out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
)
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import ConfigError
from reconciliation.money import round_money
from reconciliation.policy import PRESSED, Flag
from reconciliation.text import one_line, printable
from sync import audit
from sync.collections.notice_parts import (
    NoticeExtras,
    charge_rows,
    html_alternative,
    suspension_date,
)
from sync.collections.plan import CollectionsPlan
from sync.config import NotificationsSettings
from sync.db.models import Notice
from sync.errors import NoticeError
from sync.mail import send_smtp

__all__ = ["NoticeOutcome", "render_notice", "send_notices"]

log = logging.getLogger(__name__)


@dataclass
class NoticeOutcome:
    """What one notices pass did."""

    sent: list[str] = field(default_factory=list)  # recipients reached by SMTP
    written: list[Path] = field(default_factory=list)  # .eml files
    already: int = 0  # notices sent before for the same flag
    no_recipient: list[str] = field(default_factory=list)  # customer ids
    bad_address: list[str] = field(default_factory=list)  # customer ids, skipped


def _address_problem(address: str) -> str | None:
    """Why ``address`` cannot be a notice's recipient, or None when it is one plain address."""
    if address != one_line(address):
        return "it holds a control character or line break"
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError) as exc:
        return f"not one e-mail address ({one_line(str(exc))[:120]})"
    if not parsed.username or not parsed.domain:
        return "not one e-mail address (no local part or no domain)"
    return None


def _environment(settings: NotificationsSettings) -> Environment:
    loaders: list[Any] = []
    if settings.templates_dir is not None:
        loaders.append(FileSystemLoader(settings.templates_dir))
    loaders.append(PackageLoader("sync.collections", "templates"))
    # Whoever can write templates_dir must not be able to run code in the daemon.
    return SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=False,  # plain-text mail, never HTML
        keep_trailing_newline=True,
    )


def _context(
    flag: Flag,
    plan: CollectionsPlan,
    settings: NotificationsSettings,
    extras: NoticeExtras | None,
) -> dict[str, Any]:
    ledger = plan.ledgers[(flag.customer_id, flag.currency)]
    c = flag.currency
    statement = extras.statement(flag.customer_id, c) if extras is not None else None
    context = {
        "customer_id": flag.customer_id,
        "customer_name": flag.customer_name,
        "currency": c,
        "stage": flag.stage,
        "action": flag.action,
        "as_of": plan.as_of.isoformat(),
        "overdue_amount": str(round_money(flag.overdue_amount, c)),
        "days_overdue": flag.days_overdue,
        "charges": charge_rows(statement)
        if statement is not None
        else [
            {
                "invoice_id": charge.invoice_id,
                "due_date": charge.due_date.isoformat(),
                "amount": str(round_money(charge.amount, c)),
                "unpaid": str(round_money(part, c)),
                # without the statement: what the ledger knows, still no Microsoft invoice id
                "period": f"due {charge.due_date}",
                "products": "Microsoft cloud services",
            }
            for charge, part in ledger.overdue_charges()
        ],
        "sender_name": settings.sender_name,
        "payment_instructions": printable(settings.payment_instructions).strip(),
        "attached": extras is not None,
        "suspend_on": (
            suspension_date(extras.settings, plan.as_of).isoformat() if extras is not None else ""
        ),
    }
    return context


def render_notice(
    flag: Flag,
    plan: CollectionsPlan,
    settings: NotificationsSettings,
    recipient: str | None,
    extras: NoticeExtras | None = None,
) -> EmailMessage:
    """The message for one flag, from its stage's template (or its action's): plain text
    with an HTML alternative, and with ``extras`` the customer's statement and the
    published policy attached."""
    env = _environment(settings)
    names = [f"{flag.stage}.txt.j2", f"{flag.action}.txt.j2"]
    try:
        template = env.select_template(names)
        text = template.render(_context(flag, plan, settings, extras))
    except TemplateNotFound as exc:
        raise ConfigError(
            f"[notifications] templates_dir: no template {' or '.join(names)} for stage "
            f"{flag.stage!r}; add one or remove templates_dir to use the shipped ones"
        ) from exc
    except TemplateError as exc:
        where = getattr(exc, "filename", None) or names[0]
        line = getattr(exc, "lineno", None)
        raise ConfigError(
            f"notice template {where}{f':{line}' if line else ''}: {exc.message}"
        ) from exc
    head, _, body = text.partition("\n")
    if not head.startswith("Subject:"):
        raise ConfigError(
            f"notice template {template.filename or names[0]}: the first line must be 'Subject: …'"
        )
    message = EmailMessage()
    # A customer's name reaches the subject through the template: one line, no controls.
    message["Subject"] = one_line(head.removeprefix("Subject:")).strip()
    message["From"] = formataddr((one_line(settings.sender_name), settings.from_address))
    if recipient:
        message["To"] = recipient
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.from_address.rpartition("@")[2] or None)
    body = printable(body).lstrip("\n")
    message.set_content(body)
    message.add_alternative(html_alternative(message["Subject"], body), subtype="html")
    if extras is not None:
        for attachment in extras.attachments(flag.customer_id, flag.currency):
            message.add_attachment(
                attachment.content,
                subtype=attachment.subtype,
                filename=attachment.filename,
            )
    return message


def _eml_path(folder: Path, plan: CollectionsPlan, flag: Flag) -> Path:
    name = f"{plan.as_of}-{flag.customer_id}-{flag.currency}-{flag.stage}.eml"
    return folder / name


def _already_sent(session: Session) -> set[int]:
    return set(session.scalars(select(Notice.flag_id)))


def _skip_bad_address(
    sessions: sessionmaker[Session], flag: Flag, recipient: str, problem: str, actor: str
) -> None:
    """Log and audit a notice left out for its address; nothing is recorded as sent, so the
    next round tries again (with the address Partner Center or the config has by then)."""
    log.warning(
        "notice to %s (%s) skipped: billing address %r: %s; correct it in Partner Center or "
        'set [notifications.recipients."%s"]',
        one_line(flag.customer_name),
        flag.customer_id,
        recipient,
        problem,
        flag.customer_id,
    )
    with sessions.begin() as session:
        audit.record(
            session,
            "notice_skipped",
            actor,
            customer_id=flag.customer_id,
            currency=flag.currency,
            stage=flag.stage,
            recipient=recipient,
            reason=f"bad billing address: {problem}",
        )


def send_notices(
    settings: NotificationsSettings,
    sessions: sessionmaker[Session],
    plan: CollectionsPlan,
    recipient_for: Callable[[str], str | None],
    actor: str,
    extras: NoticeExtras | None = None,
) -> NoticeOutcome:
    """Send (or write) the notice of every flagged customer that has not had it yet.

    ``recipient_for`` gives a customer's billing address; a customer without
    one is skipped (and retried next time) when mailing by SMTP.
    """
    outcome = NoticeOutcome()
    with sessions() as session:
        done = _already_sent(session)
    failures = []
    for flag in plan.flags:
        if flag.action not in PRESSED or flag.stage is None:
            continue
        flag_id = plan.flag_ids.get((flag.customer_id, flag.currency))
        if flag_id is None:
            continue  # the plan was not stored
        if flag_id in done:
            outcome.already += 1
            continue
        recipient = settings.recipients.get(flag.customer_id) or recipient_for(flag.customer_id)
        if settings.smtp is not None and not recipient:
            log.warning(
                'no billing address for %s (%s): set [notifications.recipients."%s"]',
                flag.customer_name,
                flag.customer_id,
                flag.customer_id,
            )
            outcome.no_recipient.append(flag.customer_id)
            continue
        problem = _address_problem(recipient) if recipient else None
        if problem is not None:
            _skip_bad_address(sessions, flag, str(recipient), problem, actor)
            outcome.bad_address.append(flag.customer_id)
            continue
        message = render_notice(flag, plan, settings, recipient, extras)
        channel = "smtp" if settings.smtp is not None else "eml"
        path = _eml_path(settings.out_dir, plan, flag)
        # Recorded before it goes out: a run killed mid-send never sends it a second time.
        with sessions.begin() as session:
            notice = Notice(
                customer_id=flag.customer_id,
                currency=flag.currency,
                stage=flag.stage,
                flag_id=flag_id,
                channel=channel,
                recipient=recipient,
                message_id=message["Message-ID"],
                sent_at=datetime.now(UTC),
            )
            session.add(notice)
            session.flush()
            notice_id = notice.id
        try:
            if settings.smtp is not None:
                send_smtp(settings.smtp, message)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(bytes(message))
        except (NoticeError, OSError) as exc:
            with sessions.begin() as session:
                session.execute(delete(Notice).where(Notice.id == notice_id))
            failures.append(f"{flag.customer_name} ({flag.currency}): {exc}")
            continue
        if channel == "smtp":
            outcome.sent.append(str(recipient))
        else:
            outcome.written.append(path)
        with sessions.begin() as session:
            audit.record(
                session,
                "notice_sent" if channel == "smtp" else "notice_written",
                actor,
                customer_id=flag.customer_id,
                currency=flag.currency,
                stage=flag.stage,
                recipient=recipient,
                subject=message["Subject"],
                file=None if channel == "smtp" else str(path),
            )
    if failures:
        raise NoticeError(
            f"{len(failures)} notice(s) not sent ({failures[0]}); they are retried next time"
        )
    return outcome
