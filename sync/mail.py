"""Sending one e-mail through the configured SMTP server: STARTTLS always, login if set.

Notices to customers and the daily report to finance both go out here.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from email.message import EmailMessage

from reconciliation.errors import ConfigError
from sync.config import SmtpSettings
from sync.errors import NoticeError

__all__ = ["send_smtp"]


def send_smtp(smtp: SmtpSettings, message: EmailMessage) -> None:
    """Send ``message``; NoticeError naming the server when any recipient did not get it."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    user = os.environ.get(smtp.username_env, "") if smtp.username_env else ""
    password = os.environ.get(smtp.password_env, "")
    if user and not password:
        raise ConfigError(
            f"[notifications.smtp] password_env: set the environment variable {smtp.password_env}"
        )
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as server:
            server.starttls(context=context)  # never send credentials or mail in clear
            if user:
                server.login(user, password)
            refused = server.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # smtplib's texts carry the server's answer, never our password.
        raise NoticeError(f"SMTP {smtp.host}:{smtp.port}: {exc}") from exc
    if refused:
        # smtplib raises only when every recipient is refused; a message some of them
        # never got is not delivered.
        who = ", ".join(
            f"{address} ({code} {answer.decode(errors='replace')})"
            for address, (code, answer) in sorted(refused.items())
        )
        raise NoticeError(
            f"SMTP {smtp.host}:{smtp.port}: refused {len(refused)} recipient(s): {who}"
        )
