"""The collections policy as a document: built from the validated settings.

:func:`build_document` turns ``[collections]`` — the same settings the plan
enforces — into a :class:`PolicyDocument` (the default policy and each named one,
stage by stage, and the sections around them). Because nothing is written by hand,
the published policy cannot drift from what pcsync does. Per-customer overrides and
exemptions are never named: the document says only that individual arrangements may
apply. Pure: settings in, document out; :mod:`.render` turns it into text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from reconciliation.errors import InputError
from reconciliation.text import one_line, printable
from sync.config import CollectionStage, Settings

__all__ = [
    "FORMATS",
    "PolicyDocument",
    "PolicyPart",
    "Section",
    "StageEntry",
    "build_document",
    "describe_cron",
]

Format = Literal["md", "html", "text"]
FORMATS: tuple[Format, ...] = ("md", "html", "text")
Kind = Literal["reminder", "final_notice", "suspension"]


@dataclass(frozen=True, slots=True)
class StageEntry:
    """One stage as published: when it applies and what happens then."""

    name: str
    days_overdue: int
    # The smallest overdue amount that reaches the stage, as configured; None: any amount.
    minimum: Decimal | None
    kind: Kind
    when: str
    what: str


@dataclass(frozen=True, slots=True)
class PolicyPart:
    """The default policy (``name`` None) or one named policy, its stages in order."""

    name: str | None
    heading: str
    stages: tuple[StageEntry, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """A headed block of paragraphs; a paragraph may hold line breaks (payment details)."""

    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """The whole published policy, ready for any format."""

    title: str
    intro: tuple[str, ...]
    policies: tuple[PolicyPart, ...]
    sections: tuple[Section, ...]


# --- settings -> document -------------------------------------------------------


def build_document(settings: Settings, *, policy: str | None = None) -> PolicyDocument:
    """The policy document: the default and every named policy, or only ``policy``."""
    section = settings.collections
    if policy is not None and policy not in section.policies:
        known = ", ".join(sorted(section.policies)) or "none defined"
        raise InputError(
            f"--policy: no [collections.policies.{one_line(policy)}] in the config "
            f"(defined: {known})"
        )
    parts = []
    if policy is None:
        parts.append(
            _part(None, "Our collections policy", section.stages, section.min_overdue_amount)
        )
    for name, named in sorted(section.policies.items()):
        if policy is not None and name != policy:
            continue
        minimum = (
            section.min_overdue_amount
            if named.min_overdue_amount is None
            else named.min_overdue_amount
        )
        heading = f"Policy “{one_line(name)}”"
        parts.append(_part(one_line(name), heading, named.stages, minimum))
    suspends = any(s.kind == "suspension" for p in parts for s in p.stages)
    sections = [
        _how_stages_apply(),
        _arrangements(settings, named_shown=policy is None and bool(section.policies)),
        _holds(),
        *([_suspension(), _reactivation(settings)] if suspends else []),
        _how_to_pay(settings),
    ]
    sender = one_line(settings.notifications.sender_name) or "Accounts receivable"
    intro = (
        "This is when and how we follow up unpaid invoices for the Microsoft cloud "
        "services you buy through us, and when access to your subscriptions is affected.",
        f"Issued by {sender}. It is generated from the settings our billing system "
        "enforces, so it always describes what actually happens.",
    )
    return PolicyDocument("Collections policy", intro, tuple(parts), tuple(sections))


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _part(
    name: str | None, heading: str, stages: tuple[CollectionStage, ...], default_min: Decimal
) -> PolicyPart:
    entries = []
    for i, stage in enumerate(stages):
        minimum = default_min if stage.min_amount is None else stage.min_amount
        later = stages[i + 1 :]
        kind: Kind = "suspension" if stage.action == "suspend" else "reminder"
        if kind == "reminder" and later and later[0].action == "suspend":
            kind = "final_notice"
        entries.append(
            StageEntry(
                _stage_name(stage.name),
                stage.days_overdue,
                minimum if minimum > 0 else None,
                kind,
                _when(stage.days_overdue, minimum),
                _what(kind, later),
            )
        )
    return PolicyPart(name, heading, tuple(entries))


def _stage_name(name: str) -> str:
    # "final_notice" is a config key; a customer reads "Final notice". Other names stay as set.
    if re.fullmatch(r"[a-z][a-z0-9_]*", name):
        return name.replace("_", " ").capitalize()
    return one_line(name)


def _when(days: int, minimum: Decimal) -> str:
    start = (
        "As soon as a payment is overdue"
        if days == 0
        else f"From {days} day{'s' if days != 1 else ''} after the due date"
    )
    if minimum > 0:
        return (
            f"{start}, when at least {_amount(minimum)} is overdue in one currency "
            f"(for example {_amount(minimum)} EUR or {_amount(minimum)} USD)"
        )
    return f"{start}, whatever the amount overdue"


def _what(kind: Kind, later: tuple[CollectionStage, ...]) -> str:
    if kind == "suspension":
        return (
            "we suspend your active Microsoft cloud subscriptions bought through us, "
            "once a member of our team has approved it, and tell you by e-mail. "
            "Your users lose access to the services until you pay."
        )
    if kind == "final_notice":
        return (
            "we send you a final notice by e-mail: without payment, your subscriptions "
            f"may be suspended from {later[0].days_overdue} days after the due date."
        )
    return "we send you a payment reminder by e-mail."


def _how_stages_apply() -> Section:
    return Section(
        "How the stages apply",
        (
            "Days overdue count from the due date of your oldest unpaid invoice. Your "
            "account is at the last stage whose number of days and minimum amount it has "
            "both reached, and we send each stage's e-mail once.",
            "Amounts are counted per currency: invoices in different currencies are never "
            "added together, and a minimum amount applies to each currency on its own.",
        ),
    )


def _arrangements(settings: Settings, *, named_shown: bool) -> Section:
    section = settings.collections
    paragraphs = ["Individual arrangements may apply to some customers."]
    if section.exempt_customers or any(o.exempt for o in section.overrides.values()):
        paragraphs.append(
            "Some customers are exempt from these steps under an individual agreement; "
            "we never remind or suspend them under this policy."
        )
    if any(o.policy is not None for o in section.overrides.values()) or named_shown:
        paragraphs.append(
            "Some customers follow another of the policies in this document by agreement; "
            "we tell you if one applies to you."
        )
    return Section("Exemptions and individual arrangements", tuple(paragraphs))


def _holds() -> Section:
    return Section(
        "Disputes and payment plans",
        (
            "If you dispute an invoice, or we agree a payment plan or a date by which you "
            "will pay, we pause collections on your account until the agreed date: no "
            "further reminders and no suspension while the pause lasts. A pause does not "
            "lift a suspension already made; that follows payment.",
        ),
    )


def _suspension() -> Section:
    return Section(
        "What suspension means",
        (
            "A suspended subscription stops your users' access to the service; your "
            "administrators keep access to your data.",
            "New-commerce subscriptions are still billed while suspended: Microsoft charges "
            "them for their whole term, so the charges go on and remain payable.",
            "A subscription still suspended at the end of its term expires at its term end "
            "instead of renewing.",
        ),
    )


def _reactivation(settings: Settings) -> Section:
    cron = settings.schedule.collections
    when = (
        f"our next scheduled collections run ({describe_cron(cron, settings.schedule.timezone)})"
        if cron
        else "our next collections run"
    )
    return Section(
        "Reactivation",
        (
            "Once your payment has been received and recorded, so that your account is no "
            f"longer at a suspension stage, {when} recognises it and we then reactivate the "
            "subscriptions we suspended; this needs no request from you and no further "
            "approval. Only subscriptions we suspended for non-payment are reactivated this way.",
        ),
    )


def _how_to_pay(settings: Settings) -> Section:
    notifications = settings.notifications
    contact = one_line(notifications.reply_to or notifications.from_address)
    sender = one_line(notifications.sender_name) or "Accounts receivable"
    instructions = printable(notifications.payment_instructions).strip()
    paragraphs = [instructions] if instructions else []
    if not instructions:
        paragraphs.append(f"Please contact {sender} at {contact} for payment details.")
    paragraphs.append(f"Questions about an invoice or this policy: {sender}, {contact}.")
    return Section("How to pay", tuple(paragraphs))


_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_DAY_NAMES = {name[:3].lower(): i for i, name in enumerate(_DAYS)}


def describe_cron(cron: str, timezone: str) -> str:
    """A cron expression in words ("Monday to Friday at 07:00 UTC"), else quoted as is."""
    fields = cron.split()
    fallback = f"on the schedule “{cron}”, {timezone} time"
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()):
        return fallback
    minute, hour, dom, month, dow = fields
    if dom != "*" or month != "*":
        return fallback
    days = _weekdays(dow)
    if days is None:
        return fallback
    return f"{days} at {int(hour):02d}:{int(minute):02d} {timezone} time"


def _weekdays(field: str) -> str | None:
    if field in ("*", "?"):
        return "every day"

    def day(token: str) -> int | None:
        if token.isdigit() and int(token) <= 7:
            return int(token) % 7
        return _DAY_NAMES.get(token.lower())

    phrases = []
    for token in field.split(","):
        start, _, end = token.partition("-")
        first, last = day(start), day(end) if end else None
        if first is None or (end and last is None):
            return None
        phrases.append(
            f"{_DAYS[first]} to {_DAYS[last]}" if last is not None else f"{_DAYS[first]}"
        )
    return ", ".join(phrases[:-1]) + " and " + phrases[-1] if len(phrases) > 1 else phrases[0]
