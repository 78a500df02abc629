"""Post a run summary to a chat webhook, in the shape the chat tool renders.

``[notifications] webhook_format`` chooses the shape:

- ``text``: ``{"text": …}``, what Slack and Mattermost incoming webhooks (and the
  retired Office 365 connectors of Teams) read.
- ``slack``: ``text`` (the notification's fallback) plus Block Kit ``blocks`` — a
  ``header``, a ``section`` with the summary, a ``section`` whose ``fields`` are the
  headline figures, and the report's link or path. Slack's incoming webhooks take the
  same payload as ``chat.postMessage`` (docs.slack.dev, "Sending messages using
  incoming webhooks"; ``@slack/webhook`` ``IncomingWebhookSendArguments``: ``text``,
  ``blocks``).
- ``teams``: what a Teams Workflows "When a Teams webhook request is received" flow
  (the successor of the Office 365 connectors) posts as a card: a ``message`` whose
  ``attachments`` hold one item of ``contentType``
  ``application/vnd.microsoft.card.adaptive`` with an Adaptive Card as ``content``
  (``"type": "AdaptiveCard"``, ``"version": "1.4"``, ``"$schema"``, and a ``body`` of
  ``TextBlock`` and ``FactSet``) — learn.microsoft.com, "Create Incoming Webhooks" /
  "Send Adaptive Cards using Incoming Webhooks", and Power Automate's "Create flows
  that post adaptive cards to Microsoft Teams". A plain ``{"text": …}`` is not rendered
  by a Workflows flow.

A summary is a courtesy: a webhook that is down is logged and never fails the run.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["ChatMessage", "WebhookFormat", "payload", "post_summary"]

log = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
_SLACK_TEXT_LIMIT = 3000  # a section's text; longer is refused with invalid_blocks
_SLACK_HEADER_LIMIT = 150
_SLACK_FIELDS_LIMIT = 10


class WebhookFormat(enum.StrEnum):
    """The payload shape a chat tool renders (``[notifications] webhook_format``)."""

    TEXT = "text"
    SLACK = "slack"
    TEAMS = "teams"


@dataclass(frozen=True)
class ChatMessage:
    """What a run has to say in chat.

    ``text`` is the whole summary on its own (the ``text`` format posts only it);
    ``title`` heads a card; ``facts`` are the headline figures as (label, value);
    ``link`` is the report's URL or, when it is only on disk, its path.
    """

    text: str
    title: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    link: str = ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_url(link: str) -> bool:
    return link.startswith(("https://", "http://"))


def _slack(message: ChatMessage) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if message.title:
        header = {"type": "plain_text", "text": _cut(message.title, _SLACK_HEADER_LIMIT)}
        blocks.append({"type": "header", "text": header})
    text = {"type": "mrkdwn", "text": _cut(message.text, _SLACK_TEXT_LIMIT)}
    blocks.append({"type": "section", "text": text})
    if message.facts:
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{label}*\n{value}", 2000)}
            for label, value in message.facts[:_SLACK_FIELDS_LIMIT]
        ]
        blocks.append({"type": "section", "fields": fields})
    if message.link:
        where = f"<{message.link}|Open the report>" if _is_url(message.link) else message.link
        link = {"type": "mrkdwn", "text": _cut(f"Report: {where}", _SLACK_TEXT_LIMIT)}
        blocks.append({"type": "section", "text": link})
    return {"text": message.text, "blocks": blocks}


def _teams(message: ChatMessage) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if message.title:
        body.append(
            {
                "type": "TextBlock",
                "text": message.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            }
        )
    body.append({"type": "TextBlock", "text": message.text, "wrap": True})
    if message.facts:
        facts = [{"title": label, "value": value} for label, value in message.facts]
        body.append({"type": "FactSet", "facts": facts})
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if _is_url(message.link):
        action = {"type": "Action.OpenUrl", "title": "Open the report", "url": message.link}
        card["actions"] = [action]
    elif message.link:
        body.append({"type": "TextBlock", "text": f"Report: {message.link}", "wrap": True})
    attachment = {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def payload(message: ChatMessage, fmt: WebhookFormat = WebhookFormat.TEXT) -> dict[str, Any]:
    """The JSON body that posts ``message`` in ``fmt``'s shape."""
    if fmt is WebhookFormat.SLACK:
        return _slack(message)
    if fmt is WebhookFormat.TEAMS:
        return _teams(message)
    text = message.text
    if message.link:
        text += f"\nReport: {message.link}"
    return {"text": text}


def post_summary(
    url: str,
    message: ChatMessage | str,
    timeout: float = 10.0,
    *,
    fmt: WebhookFormat = WebhookFormat.TEXT,
) -> bool:
    """Post ``message`` in ``fmt``'s shape; True when the webhook accepted it."""
    if not url:
        return False
    if isinstance(message, str):
        message = ChatMessage(message)
    try:
        response = requests.post(url, json=payload(message, fmt), timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        # The URL itself is a credential for most webhooks: name the host only.
        host = url.split("/")[2] if url.count("/") >= 2 else "webhook"
        log.warning("run summary not posted to %s: %s", host, type(exc).__name__)
        return False
    return True
