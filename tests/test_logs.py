"""Secrets are scrubbed from every formatted log line, whatever their shape."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from sync.runtime.logs import configure_logging, redact, register_secrets


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("body client_secret=xyz123&grant_type=c", "body client_secret=***&grant_type=c"),
        ('{"access_token": "tok-value"}', '{"access_token": "***"}'),
        (
            "GET https://s.blob/x.json.gz?sv=1&sig=AbC%2Bd&se=2",
            "GET https://s.blob/x.json.gz?sv=1&sig=***&se=2",
        ),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_sig", "jwt ***"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_credential_shapes_are_masked(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_registered_secret_values_are_masked_anywhere() -> None:
    register_secrets(["plain-secret-without-shape"])
    assert redact("oops plain-secret-without-shape leaked") == "oops *** leaked"


def test_logs_go_to_stderr_as_it_is_when_written(monkeypatch: pytest.MonkeyPatch) -> None:
    before = io.StringIO()
    monkeypatch.setattr(sys, "stderr", before)
    configure_logging(0, "text")
    before.close()  # replaced and closed after set-up, as a test's capture does
    after = io.StringIO()
    monkeypatch.setattr(sys, "stderr", after)
    logging.getLogger("pcsync.test").warning("written late")
    assert "WARNING pcsync.test: written late" in after.getvalue()
