"""A mail the SMTP server refuses for some recipients is not reported as delivered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync.runtime.daemon import Daemon
from tests.test_notices import Mailbox, smtp_server  # noqa: F401 - the fixture
from tests.world import World

FINANCE = ("controller@partner.example", "finance@partner.example")
REFUSED = "finance@partner.example"


def _report_runs(world: World) -> list[tuple[str, dict[str, Any]]]:
    with world.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT status, counts FROM runs WHERE kind = 'report' ORDER BY id")
        ).all()
    return [
        (status, counts if isinstance(counts, dict) else json.loads(counts or "{}"))
        for status, counts in rows
    ]


def test_a_report_mail_refused_for_one_recipient_fails_the_run_and_is_sent_again(
    world: World,
    smtp_server: Mailbox,  # noqa: F811
    tmp_path: Path,
) -> None:
    async def handle_RCPT(
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp_server.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
    addresses = ", ".join(f'"{a}"' for a in FINANCE)
    world.configure(f'[reports]\nout_dir = "{tmp_path / "out"}"\nemail_to = [{addresses}]\n')
    service = Daemon(world.settings, world.engine, world.sessions)
    service.report_job()
    assert [rcpts for rcpts, _ in smtp_server.messages] == [[FINANCE[0]]]  # one got it
    ((status, counts),) = _report_runs(world)
    # finance@ never got the report: the run must not say it was mailed to both.
    assert status == "failed"
    assert "mail" not in counts  # so the next run sends it again
    with world.engine.connect() as connection:
        error = connection.scalar(sa.text("SELECT error FROM runs WHERE kind = 'report'"))
    # The next scheduled run mails its own date: the error says this one was not mailed.
    assert "reports are in" in error
    assert "were not mailed" in error
    del smtp_server.handle_RCPT  # type: ignore[attr-defined]
    service.report_job()
    assert sorted(smtp_server.messages[-1][0]) == sorted(FINANCE)
    status, counts = _report_runs(world)[-1]
    assert (status, counts["mail"]) == ("succeeded", {"sent": 2})
