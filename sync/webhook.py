"""Post a run summary to a chat webhook (Teams and Slack both read ``{"text": …}``).

A summary is a courtesy: a webhook that is down is logged and never fails the run.
"""

from __future__ import annotations

import logging

import requests

__all__ = ["post_summary"]

log = logging.getLogger(__name__)


def post_summary(url: str, text: str, timeout: float = 10.0) -> bool:
    """Post ``text``; True when the webhook accepted it."""
    if not url:
        return False
    try:
        response = requests.post(url, json={"text": text}, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        # The URL itself is a credential for most webhooks: name the host only.
        host = url.split("/")[2] if url.count("/") >= 2 else "webhook"
        log.warning("run summary not posted to %s: %s", host, type(exc).__name__)
        return False
    return True
