"""The daemon's report job: the day's reports written, mailed to finance once per date."""

from __future__ import annotations

import io
import json
import ssl
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from reconciliation.errors import ConfigError
from sync.config import load_settings
from sync.runtime.daemon import Daemon
from tests.test_notices import Mailbox, smtp_server  # noqa: F401 - the fixture
from tests.world import World

FINANCE = ("controller@partner.example", "finance@partner.example")


def _reports(world: World, out: Path, extra: str = "") -> None:
    addresses = ", ".join(f'"{a}"' for a in FINANCE)
    world.configure(f'[reports]\nout_dir = "{out}"\nemail_to = [{addresses}]\n{extra}')


def _report_runs(world: World) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    with world.engine.connect() as connection:
        rows = connection.execute(
            sa.select(sa.text("status, params, counts"))
            .select_from(sa.text("runs"))
            .where(sa.text("kind = 'report'"))
            .order_by(sa.text("id"))
        ).all()
    return [(status, _json(params), _json(counts)) for status, params, counts in rows]


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)  # type: ignore[no-any-return]


def _xlsx_of(message: Message) -> bytes:
    assert isinstance(message, EmailMessage)
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert str(attachment.get_filename()).endswith(".xlsx")
    data = attachment.get_content()
    assert isinstance(data, bytes)
    load_workbook(io.BytesIO(data))  # a workbook Excel opens, not just bytes
    return data


def test_the_report_mail_arrives_once_per_date_with_the_xlsx_attached(
    world: World,
    smtp_server: Mailbox,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "finance"
    _reports(world, out)
    service = Daemon(world.settings, world.engine, world.sessions)
    service.report_job()
    service.report_job()  # a rerun the same day rewrites the files and sends nothing
    assert len(smtp_server.messages) == 1
    recipients, raw = smtp_server.messages[0]
    assert sorted(recipients) == sorted(FINANCE)
    message = message_from_bytes(raw.as_bytes(), policy=policy.default)
    today = service._today().isoformat()
    assert message["Subject"] == f"Partner Center billing as of {today}"

    # The workbook mailed is the one written (same sheets, same cells; the file's bytes
    # differ by the zip's timestamps when the rerun rewrote it a second later).
    def cells(data: bytes) -> list[list[tuple[object, ...]]]:
        book = load_workbook(io.BytesIO(data))
        return [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets]

    written = cells((out / f"pcsync-{today}.xlsx").read_bytes())
    assert cells(_xlsx_of(message)) == written
    assert len(written) >= 2
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",))
    assert html is not None
    assert html.get_content() == (out / f"pcsync-{today}.html").read_text(encoding="utf-8")
    text = message.get_body(("plain",))
    assert text is not None
    assert "Balance (USD): " in text.get_content()
    assert {p.suffix for p in out.iterdir()} == {".xlsx", ".html", ".csv", ".json"}
    runs = _report_runs(world)
    assert [(s, p["as_of"]) for s, p, _ in runs] == [("succeeded", today)] * 2
    assert runs[0][2]["mail"] == {"sent": 2}
    assert runs[1][2]["mail"] == {"already": 1}


def test_without_smtp_the_report_mail_is_written_as_an_eml_file(
    world: World, tmp_path: Path
) -> None:
    out = tmp_path / "finance"
    _reports(world, out)
    service = Daemon(world.settings, world.engine, world.sessions)
    service.report_job()
    today = service._today().isoformat()
    eml = out / f"pcsync-{today}-mail.eml"
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == ", ".join(FINANCE)
    _xlsx_of(message)
    service.report_job()
    assert _report_runs(world)[-1][2]["mail"] == {"already": 1}


class _Hook:
    """An HTTPS chat webhook (the simulator's certificate, which requests trust)."""

    def __init__(self, world: World) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(world.sim.tls.cert, world.sim.tls.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hook/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook(world: World) -> Iterator[_Hook]:
    server = _Hook(world)
    yield server
    server.server.shutdown()
    server.server.server_close()


def _with_webhook(world: World, hook: _Hook, fmt: str) -> Daemon:
    world.configure(
        f'[notifications]\nwebhook_url_env = "PCSYNC_WEBHOOK"\nwebhook_format = "{fmt}"'
    )
    assert world.settings.source is not None
    settings = load_settings(
        world.settings.source,
        {"PCSYNC_CLIENT_SECRET": world.sim.config.client_secret, "PCSYNC_WEBHOOK": hook.url},
    )
    return Daemon(settings, world.engine, world.sessions)


def test_the_report_job_posts_its_figures_and_the_report_path_to_slack(
    world: World, hook: _Hook, tmp_path: Path
) -> None:
    out = tmp_path / "finance"
    _reports(world, out)
    service = _with_webhook(world, hook, "slack")
    service.report_job()
    (body,) = hook.bodies
    today = service._today().isoformat()
    assert body["text"].startswith(f"pcsync report as of {today}: ")
    assert "mail written to" in body["text"]
    header, _, figures, link = body["blocks"]
    assert header["text"]["text"] == f"Partner Center billing as of {today}"
    labels = [f["text"].split("\n")[0] for f in figures["fields"]]
    assert "*Balance (USD)*" in labels
    assert "*To suspend*" in labels
    assert link["text"]["text"] == f"Report: {out / f'pcsync-{today}.html'}"


def test_a_failed_report_mail_is_a_failed_run_counted_and_posted_to_teams(
    world: World, hook: _Hook, tmp_path: Path
) -> None:
    nobody_listens = '[notifications.smtp]\nhost = "127.0.0.1"\nport = 9\n'  # discard: closed
    _reports(world, tmp_path / "finance", nobody_listens)
    service = _with_webhook(world, hook, "teams")
    service.report_job()  # does not raise: the daemon goes on
    ((status, _, counts),) = _report_runs(world)
    assert status == "failed"
    assert "mail" not in counts  # so the next run sends it
    failures = service.metrics.registry.get_sample_value(
        "pcsync_job_failures_total", {"job": "report"}
    )
    assert failures == 1
    (body,) = hook.bodies
    card = body["attachments"][0]["content"]
    assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"].startswith("pcsync report run ")
    assert "failed" in card["body"][0]["text"]


def test_the_report_job_is_scheduled_after_the_reconcile(world: World) -> None:
    service = Daemon(world.settings, world.engine, world.sessions)
    schedule = world.settings.schedule
    service._add("report", schedule.report, service.report_job, False)
    (job,) = service.scheduler.get_jobs()
    assert (job.id, job.max_instances, job.coalesce) == ("report", 1, True)
    assert (schedule.reconcile, schedule.report) == ("30 5 * * *", "45 5 * * *")


@pytest.mark.parametrize(
    ("addresses", "problem"),
    [
        ('["finance"]', 'got "finance": not one e-mail address'),
        ('["a@b.com\\nBcc: x@evil.example"]', "a control character or a line break"),
        ('["ar@localhost"]', "no domain with a dot"),
        ('"finance@partner.example"', "expected an array"),
    ],
)
def test_email_to_takes_only_a_list_of_single_addresses(
    write_config, addresses: str, problem: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(f"[reports]\nemail_to = {addresses}\n"), {})
    (text,) = caught.value.problems
    assert text.startswith("[reports] email_to")
    assert problem in text


def test_email_to_accepts_finance_addresses(write_config) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(write_config(f"[reports]\nemail_to = {json.dumps(FINANCE)}\n"), {})
    assert settings.reports.email_to == FINANCE
