"""What pcsync sends and writes: ``[notifications]`` (mail, webhook), ``[reports]``,
``[statements]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from sync.config.values import (
    ConfigPath,
    MailAddress,
    Name,
    PaymentInstructions,
    Port,
    Section,
    Text,
    TimeoutSeconds,
)
from sync.webhook import WebhookFormat

__all__ = ["NotificationsSettings", "ReportsSettings", "SmtpSettings", "StatementsSettings"]


class SmtpSettings(Section):
    """The mail server notices go through (``[notifications.smtp]``); STARTTLS always."""

    host: Name
    port: Port = 587
    username_env: Text = ""
    password_env: Text = "PCSYNC_SMTP_PASSWORD"  # noqa: S105 - a variable name
    ca_file: ConfigPath | None = None
    timeout_seconds: TimeoutSeconds = 30


class NotificationsSettings(Section):
    """Customer notices and the run summary webhook (``[notifications]``)."""

    from_address: Text = "billing@example.com"
    reply_to: Text = ""
    sender_name: Text = "Accounts receivable"
    templates_dir: ConfigPath | None = None
    out_dir: ConfigPath = Path("notices")
    # Webhook URLs carry their own credential, so the URL comes from the environment.
    webhook_url_env: Text = ""
    # The payload's shape: what the chat tool behind the webhook renders (sync/webhook.py).
    webhook_format: WebhookFormat = WebhookFormat.TEXT
    recipients: dict[str, Name] = Field(default_factory=dict)
    # How customers pay (bank details, a payment link), quoted in the published policy.
    payment_instructions: PaymentInstructions = ""
    smtp: SmtpSettings | None = None
    webhook_url: SecretStr | None = Field(default=None, exclude=True)  # from webhook_url_env


class ReportsSettings(Section):
    """Where and how reports are written (``[reports]``)."""

    out_dir: ConfigPath = Path("reports")
    formats: tuple[Literal["xlsx", "html", "csv", "json"], ...] = ("xlsx", "html", "csv", "json")
    title: Text = "Partner Center billing"
    # Finance addresses the daemon's report job mails the day's report to (HTML body,
    # XLSX attached), through [notifications.smtp]; empty: the reports are only written.
    email_to: tuple[MailAddress, ...] = ()


class StatementsSettings(Section):
    """Customer statements (``[statements]``): whose name they are in, what they show."""

    # Printed at the top of every statement; addresses and contacts keep their line breaks.
    partner_name: Annotated[str, Field(strict=True, min_length=1, max_length=200)] = (
        "Your CSP partner"
    )
    address: PaymentInstructions = ""
    contact: PaymentInstructions = ""
    # Name each charge by its Microsoft invoice number too (else by its billing period only).
    show_microsoft_invoice: bool = Field(default=False, strict=True)
    out_dir: ConfigPath = Path("statements")
