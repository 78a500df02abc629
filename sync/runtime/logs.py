"""Logging set-up: text or JSON lines on stderr, with secrets scrubbed from every line.

Scrubbing happens on the fully formatted text (message, arguments and any
traceback), so a secret cannot slip through an exception's text either. Known
secret values are registered at start-up; common token shapes (bearer tokens,
``client_secret=``, SAS signatures, JWTs) are masked whatever their value.
Text lines lose escape sequences and control characters (a customer name from
Partner Center is logged as sent, and must not drive the terminal); JSON
escapes them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, TextIO

from reconciliation.text import printable

__all__ = ["LogFormat", "configure_logging", "redact", "register_secrets"]

LogFormat = Literal["text", "json"]
MASK = "***"

_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"(?i)((?:client_secret|client_assertion|password|refresh_token|access_token)"
               r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
    re.compile(r"(?i)([?&]sig=)[^&\s\"']+"),
    re.compile(r"()eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
]  # fmt: skip

_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that they are masked wherever they appear."""
    _secrets.update(value for value in values if value and len(value) >= 4)


def redact(text: str) -> str:
    """Mask registered secrets and anything shaped like a credential in ``text``."""
    for secret in _secrets:
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(printable(super().format(record)))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["traceback"] = redact(self.formatException(record.exc_info))
        # Masked before encoding: masking the encoded line could cut an escape (\") in two.
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record arrives, not as it was at set-up.

    A background thread may log after whoever set up logging replaced ``sys.stderr``
    and closed the one before (a test's capture does): writing to a closed stream
    would print logging's own error and lose the record.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def configure_logging(verbosity: int, log_format: LogFormat, secrets: Iterable[str] = ()) -> None:
    """Send logs to stderr: -1 quiet (errors), 0 normal (info), 1 verbose (debug)."""
    register_secrets(secrets)
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = {-1: logging.ERROR, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    root.setLevel(level)
    # Third-party chatter stays at warning unless the user asked for everything.
    for noisy in ("urllib3", "msal", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
