"""Webhook payloads in the shapes Slack and Teams Workflows document, and their config key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciliation.errors import ConfigError
from sync.config import load_settings
from sync.webhook import ChatMessage, WebhookFormat, payload, post_summary

MESSAGE = ChatMessage(
    text="pcsync report for 2026-11-30: 12 customers, 3 to suspend",
    title="Partner Center billing as of 2026-11-30",
    facts=(("Overdue (USD)", "23,251.85"), ("Findings", "4")),
    link="https://files.example/reports/pcsync-2026-11-30.html",
)


def test_the_text_format_keeps_the_plain_text_payload_with_the_link() -> None:
    body = payload(MESSAGE, WebhookFormat.TEXT)
    assert list(body) == ["text"]
    assert body["text"].startswith(MESSAGE.text)
    assert body["text"].endswith(MESSAGE.link)


def test_slack_gets_text_plus_blocks_with_the_figures_and_the_link() -> None:
    body = payload(MESSAGE, WebhookFormat.SLACK)
    assert body["text"] == MESSAGE.text  # the notification's fallback
    header, summary, figures, link = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": MESSAGE.title}}
    assert summary["type"] == "section"
    assert summary["text"] == {"type": "mrkdwn", "text": MESSAGE.text}
    assert figures["type"] == "section"
    assert figures["fields"] == [
        {"type": "mrkdwn", "text": "*Overdue (USD)*\n23,251.85"},
        {"type": "mrkdwn", "text": "*Findings*\n4"},
    ]
    assert link["text"]["text"] == f"Report: <{MESSAGE.link}|Open the report>"


def test_slack_limits_are_kept_for_long_summaries_and_many_figures() -> None:
    long = ChatMessage("x" * 5000, title="t" * 400, facts=tuple((f"f{i}", "1") for i in range(15)))
    blocks = payload(long, WebhookFormat.SLACK)["blocks"]
    assert len(blocks[0]["text"]["text"]) <= 150
    assert len(blocks[1]["text"]["text"]) <= 3000
    assert len(blocks[2]["fields"]) == 10


def _card(body: dict[str, Any]) -> dict[str, Any]:
    """The Adaptive Card of a Teams Workflows message, checked against the documented shape."""
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert tuple(int(n) for n in card["version"].split(".")) >= (1, 2)
    assert card["body"]
    assert all(item["type"] in ("TextBlock", "FactSet") for item in card["body"])
    return card  # type: ignore[no-any-return]


def test_teams_gets_an_adaptive_card_message_as_workflows_expect() -> None:
    card = _card(payload(MESSAGE, WebhookFormat.TEAMS))
    title, text, facts = card["body"]
    assert (title["text"], title["weight"]) == (MESSAGE.title, "Bolder")
    assert text["text"] == MESSAGE.text
    assert facts["facts"] == [
        {"title": "Overdue (USD)", "value": "23,251.85"},
        {"title": "Findings", "value": "4"},
    ]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the report", "url": MESSAGE.link}
    ]


def test_a_report_on_disk_is_named_by_its_path_in_the_card() -> None:
    on_disk = ChatMessage("done", link="/srv/reports/pcsync-2026-11-30.html")
    card = _card(payload(on_disk, WebhookFormat.TEAMS))
    assert card["body"][-1]["text"] == "Report: /srv/reports/pcsync-2026-11-30.html"
    assert "actions" not in card
    slack = payload(on_disk, WebhookFormat.SLACK)["blocks"]
    assert slack[-1]["text"]["text"] == "Report: /srv/reports/pcsync-2026-11-30.html"


class _Hook:
    """A local HTTP server standing in for a chat webhook; keeps the JSON bodies posted."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                assert self.headers["Content-Type"] == "application/json"
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(202)  # what a Workflows trigger answers
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/trigger"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("fmt", list(WebhookFormat))
def test_each_format_is_posted_as_json_and_accepted(hook: _Hook, fmt: WebhookFormat) -> None:
    assert post_summary(hook.url, MESSAGE, fmt=fmt)
    (body,) = hook.bodies
    assert body == payload(MESSAGE, fmt)
    if fmt is WebhookFormat.TEAMS:
        _card(body)


def test_a_plain_string_still_posts_as_text(hook: _Hook) -> None:
    assert post_summary(hook.url, "pcsync sync run 4 succeeded")
    assert hook.bodies == [{"text": "pcsync sync run 4 succeeded"}]


@pytest.mark.parametrize("fmt", ["text", "slack", "teams"])
def test_webhook_format_accepts_the_three_shapes(write_config, fmt: str) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(write_config(f'[notifications]\nwebhook_format = "{fmt}"\n'), {})
    assert settings.notifications.webhook_format is WebhookFormat(fmt)


def test_webhook_format_defaults_to_text_and_refuses_others(write_config) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(write_config(), {})
    assert settings.notifications.webhook_format is WebhookFormat.TEXT
    path = write_config('[notifications]\nwebhook_format = "hipchat"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert caught.value.problems == (
        "[notifications] webhook_format: expected 'text', 'slack' or 'teams', got \"hipchat\"",
    )
