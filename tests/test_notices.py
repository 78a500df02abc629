"""Notices: rendered from templates, sent over STARTTLS to a local SMTP server, once per stage."""

from __future__ import annotations

import json
import socket
import ssl
from email import message_from_bytes
from email.message import Message
from html import escape
from pathlib import Path
from typing import Any

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sync.runtime.daemon import Daemon
from tests.world import World

SMTP_USER, SMTP_PASSWORD = "pcsync", "smtp-test-password"


class Mailbox:
    """What the SMTP server received, and who logged in."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any):  # type: ignore[no-untyped-def]
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server(world: World, monkeypatch):  # type: ignore[no-untyped-def]
    """A local SMTP server that demands STARTTLS and a login, with the simulator's certificate."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(world.sim.tls.cert, world.sim.tls.key)
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=mailbox.authenticate,
    )
    controller.start()
    monkeypatch.setenv("PCSYNC_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("PCSYNC_SMTP_PASSWORD", SMTP_PASSWORD)
    world.configure(
        '[notifications]\nfrom_address = "ar@partner.example"\nsender_name = "Partner AR"\n'
        'payment_instructions = "IBAN DE02 1001 0010 0123 4567 89, quote your tenant domain"\n'
        f'[notifications.smtp]\nhost = "localhost"\nport = {port}\n'
        'username_env = "PCSYNC_SMTP_USER"\npassword_env = "PCSYNC_SMTP_PASSWORD"\n'
        f'ca_file = "{world.sim.tls.ca}"\n'
    )
    yield mailbox
    controller.stop()


def _stages(world: World, as_of: str) -> dict[tuple[str, str], str]:
    plan = world._json("collections", "plan", "--as-of", as_of, "--json")
    return {
        (f["customer_id"], f["currency"]): f["stage"]
        for f in plan["flags"]
        if f["action"] in ("follow_up", "suspend")
    }


def test_notices_go_out_over_starttls_once_per_stage(world: World, smtp_server: Mailbox) -> None:
    early = _stages(world, "2026-10-01")
    assert world.cli("collections", "notify", "--as-of", "2026-10-01") == 0
    assert len(smtp_server.messages) == len(early) > 0
    assert len(smtp_server.logins) == len(early)  # every session logged in, after STARTTLS
    domains = {c["id"]: c["companyProfile"]["domain"] for c in world.sim.data.customers}
    for recipients, message in smtp_server.messages:
        customer = next(c for c, d in domains.items() if recipients == [f"ap@{d}"])
        assert message["To"] == recipients[0]  # the billing profile's address
        assert message["From"] == "Partner AR <ar@partner.example>"
        assert "overdue" in message["Subject"]
        body = _part(message, "text/plain")
        assert "unpaid of" in body
        assert "invoice G" not in body  # Microsoft's invoice numbers mean nothing to them
        assert customer not in body

    assert world.cli("collections", "notify", "--as-of", "2026-10-01") == 0
    assert len(smtp_server.messages) == len(early)  # nothing twice

    late = _stages(world, "2026-11-25")
    moved = {key for key, stage in late.items() if early.get(key) != stage}
    assert moved  # e.g. final notice → suspend
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 0
    assert len(smtp_server.messages) == len(early) + len(moved)
    subjects = [m["Subject"] for _, m in smtp_server.messages[len(early) :]]
    assert any(s.startswith("Service suspension") for s in subjects)
    sent = [e for e in world.audit() if e["event"] == "notice_sent"]
    assert len(sent) == len(smtp_server.messages)


def _part(message: Message, content_type: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == content_type)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def test_a_suspend_notice_is_multipart_with_the_charges_and_the_statement_attached(
    world: World, smtp_server: Mailbox
) -> None:
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 0
    suspend = [m for _, m in smtp_server.messages if m["Subject"].startswith("Service suspension")]
    assert suspend
    message = suspend[0]
    assert message.get_content_type() == "multipart/mixed"
    body, html = _part(message, "text/plain"), _part(message, "text/html")
    assert "invoice G" not in body
    assert "IBAN DE02 1001 0010 0123 4567 89" in body
    assert "IBAN DE02" in html
    assert "will be suspended from 2026-11-26" in body  # no collections schedule: the day after
    charge_lines = [line for line in body.splitlines() if "unpaid of" in line]
    assert charge_lines
    currency = message["Subject"].split()[3]  # Service suspension: 1795.84 EUR overdue
    assert all(" to 20" in line and f" {currency} unpaid" in line for line in charge_lines)
    attachments = {p.get_filename(): p for p in message.walk() if p.get_filename()}
    statement_name = next(n for n in attachments if n.startswith("statement-2026-11-25-"))
    statement = attachments[statement_name].get_payload(decode=True).decode()
    assert "<html" in statement.lower()
    assert "Balance" in statement
    policy = attachments["collections-policy.html"].get_payload(decode=True).decode()
    assert "IBAN DE02" in policy  # the published policy says how to pay
    # The charges are the statement's own: each listed product appears in the attachment.
    for line in charge_lines:
        products = line.split(", ", 1)[1].split(":")[0].strip()
        assert escape(products.split(", ")[0]) in statement


def test_without_smtp_notices_are_written_as_eml_files(world: World, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "suspend.txt.j2").write_text(
        "Subject: Account on hold ({{ currency }})\n\nDear {{ customer_name }}, "
        "{{ overdue_amount }} {{ currency }} is {{ days_overdue }} days late.\n"
    )
    world.configure(
        f'[notifications]\ntemplates_dir = "{templates}"\nout_dir = "{tmp_path / "out"}"'
    )
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 0
    files = sorted((tmp_path / "out").glob("*.eml"))
    expected = _stages(world, "2026-11-25")
    assert len(files) == len(expected)
    held = [
        message_from_bytes(f.read_bytes())
        for f in files
        if message_from_bytes(f.read_bytes())["Subject"].startswith("Account on hold")
    ]
    assert len(held) == sum(1 for stage in expected.values() if stage == "suspend")
    assert all(m["To"].startswith("ap@") for m in held)
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 0
    assert sorted((tmp_path / "out").glob("*.eml")) == files


def test_a_broken_template_is_one_clear_error(world: World, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "reminder.txt.j2").write_text("Subject: hi\n\n{{ customer_name }\n")
    world.configure(f'[notifications]\ntemplates_dir = "{templates}"\nout_dir = "{tmp_path}"')
    capsys.readouterr()
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert error.startswith("pcsync: error: notice template ")
    assert "reminder.txt.j2:3" in error


def test_the_scheduled_round_posts_a_summary_to_the_webhook(world: World, tmp_path: Path) -> None:
    from sync.config import load_settings

    world.configure(
        f'[notifications]\nwebhook_url_env = "PCSYNC_WEBHOOK"\nout_dir = "{tmp_path / "out"}"'
    )
    assert world.settings.source is not None
    settings = load_settings(
        world.settings.source,
        {
            "PCSYNC_CLIENT_SECRET": world.sim.config.client_secret,
            "PCSYNC_WEBHOOK": "https://hooks.example.com/services/T0/B0/secret",
        },
    )
    assert "services/T0" not in repr(settings)
    daemon = Daemon(settings, world.engine, world.sessions)
    with responses.RequestsMock() as mock:
        mock.add_passthru(world.sim.base_url)
        hook = mock.post("https://hooks.example.com/services/T0/B0/secret", status=200)
        daemon.collections_job()
    (call,) = hook.calls
    text = json.loads(call.request.body)["text"]
    assert text.startswith("pcsync collections as of ")
    assert "to suspend" in text
    assert "notices:" in text


def test_a_notice_that_cannot_be_sent_is_not_recorded_and_goes_next_time(
    world: World, smtp_server: Mailbox, capsys
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from sync.db.models import Notice

    source = world.settings.source
    assert source is not None
    assert world.settings.notifications.smtp is not None
    working = f"port = {world.settings.notifications.smtp.port}"
    text = source.read_text()
    source.write_text(text.replace(working, f"port = {_free_port()}"))  # the relay is down
    capsys.readouterr()
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 1
    assert "retried next time" in capsys.readouterr().err
    with world.engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(Notice.__table__)) == 0
    source.write_text(text)  # back up
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 0
    assert len(smtp_server.messages) == len(_stages(world, "2026-11-25")) > 0


def test_a_bad_billing_address_skips_its_notice_with_a_reason_and_the_round_goes_on(
    world: World, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    templates = tmp_path / "templates"
    templates.mkdir()
    for action in ("follow_up", "suspend"):
        (templates / f"{action}.txt.j2").write_text(
            "Subject: {{ customer_name }}: {{ overdue_amount }} {{ currency }} overdue\n\n"
            "Dear {{ customer_name }},\n"
        )
    out = tmp_path / "out"
    world.configure(f'[notifications]\ntemplates_dir = "{templates}"\nout_dir = "{out}"')
    expected = _stages(world, "2026-11-25")
    flagged = sorted({customer for customer, _ in expected})
    bad, odd = flagged[0], flagged[1]
    profile = next(c for c in world.sim.data.customers if c["id"] == bad)["companyProfile"]
    profile["domain"] += "\r\nBcc: thief@attacker.example"  # as Partner Center sends it
    with world.engine.begin() as c:
        c.execute(
            sa.text("UPDATE customers SET name = :name WHERE id = :id"),
            {"name": "Odd\r\nBcc: thief@attacker.example\x1b[2J Co", "id": odd},
        )

    capsys.readouterr()
    assert world.cli("collections", "notify", "--as-of", "2026-11-25") == 0
    err = capsys.readouterr().err

    messages = [message_from_bytes(f.read_bytes()) for f in sorted(out.glob("*.eml"))]
    skipped = sum(1 for customer, _ in expected if customer == bad)
    assert len(messages) == len(expected) - skipped > 0  # everyone else heard
    assert all("attacker" not in str(m["To"]) and "Bcc" not in m for m in messages)
    odd_subjects = [str(m["Subject"]) for m in messages if str(m["Subject"]).startswith("Odd")]
    assert odd_subjects
    assert all("\x1b" not in s and "\n" not in s for s in odd_subjects)
    entries = [e for e in world.audit(bad) if e["event"] == "notice_skipped"]
    assert len(entries) == skipped
    assert entries[0]["details"]["reason"].startswith("bad billing address: ")
    assert "\r\nBcc" in entries[0]["details"]["recipient"]  # kept as sent
    assert f"({bad}) skipped: billing address" in err
