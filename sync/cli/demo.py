"""``pcsync demo``: the simulator and every step end to end, in a folder of its own.

It ends with the commands that work next; ``--serve`` keeps the simulator running
(with the demo's config, secret and CA) so that ``sync`` works against it too.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from sync.cli.app import cli
from sync.cli.ops import counts_text
from sync.collections.job import run_collections_round
from sync.collections.policy_doc import build_document, render
from sync.config import load_settings
from sync.db.engine import make_engine, make_session_factory
from sync.db.migrate import upgrade
from sync.jobs import SyncOptions, run_sync
from sync.payments import import_payments
from sync.reconcile import run_reconciliation
from sync.report import write_reports
from sync.runtime.runs import list_runs
from sync.statement import write_statements

DEMO_SECRET_ENV = "PCSYNC_DEMO_CLIENT_SECRET"  # noqa: S105 - a variable name


# Microsoft issues a month's new-commerce invoice by the 8th of the next month; the
# simulator dates it on the 5th.
INVOICES_ISSUED_BY_DAY = 6


def demo_day(today: date) -> date:
    """The day the demo's world stands on: today once last month's invoice is out, else
    the last day of last month — so its newest invoice is always in the past and every
    kind of finding shows, whatever the date."""
    if today.day >= INVOICES_ISSUED_BY_DAY:
        return today
    return today.replace(day=1) - timedelta(days=1)


@cli.command()
@click.option("--dir", "folder", default="demo", show_default=True, help="Working folder.")
@click.option(
    "--today",
    "today_text",
    metavar="YYYY-MM-DD",
    hidden=True,
    help="Run as if it were this day (reproducible demos and tests).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Keep the simulator running afterwards (until Ctrl-C), so `sync` works against it.",
)
def demo(folder: str, today_text: str | None, serve: bool) -> None:
    """Run pcsync end to end against the built-in simulator, in a working folder."""
    from connectors.simulator.server import Simulator, SimulatorConfig

    work = Path(folder).resolve()
    work.mkdir(parents=True, exist_ok=True)
    clock = date.fromisoformat(today_text) if today_text else datetime.now(UTC).date()
    sim = Simulator(SimulatorConfig(page_cap=5, anchor=demo_day(clock)), work / "simulator")
    base = sim.start()
    try:
        payments = work / "sample-payments.csv"
        payments.write_text(sim.data.payments_csv(), encoding="utf-8")
        config_path = work / "pcsync.toml"
        config_path.write_text(_demo_config(sim, base), encoding="utf-8")
        # The entry point hands the simulator's secret and CA to the process, as a
        # service manager would hand real ones.
        os.environ[DEMO_SECRET_ENV] = sim.config.client_secret
        os.environ["REQUESTS_CA_BUNDLE"] = str(sim.tls.ca)
        settings = load_settings(config_path)
        engine = make_engine(settings.database.url)
        try:
            _before, after = upgrade(engine)
            sessions = make_session_factory(engine)
            click.echo(f"simulator: {base} (seed {sim.config.scale.seed})")
            click.echo(f"database:  {_shown_url(settings.database.url)} (schema {after})")
            options = SyncOptions(wait=True, today=sim.data.anchor)
            run_id = run_sync(settings, engine, sessions, options)
            view = next(v for v in list_runs(sessions, 5) if v.id == run_id)
            click.echo(f"sync run {run_id}: {counts_text(view.counts)}")
            imported = import_payments(settings, sessions, payments)
            click.echo(
                f"payments:  {imported.imported} imported, {imported.unchanged} already "
                f"there, from {_shown(payments)}"
            )
            today = sim.data.anchor
            result = run_reconciliation(settings, sessions, today)
            overdue = sum(1 for ledger in result.ledgers if ledger.days_overdue > 0)
            click.echo(
                f"reconcile: as of {today}: {len(result.ledgers)} customer balance(s), "
                f"{overdue} overdue, {len(result.findings)} finding(s)"
            )
            round_ = run_collections_round(settings, sessions, today, "pcsync demo")
            flags = round_.plan.flags
            counts = {
                a: sum(1 for f in flags if f.action == a)
                for a in ("suspend", "follow_up", "reactivate")
            }
            click.echo(
                f"collections: {counts['suspend']} to suspend (needs approval), "
                f"{counts['follow_up']} to follow up, {counts['reactivate']} to reactivate; "
                f"{len(round_.notices.written)} notice(s) in "
                f"{_shown(settings.notifications.out_dir)}"
            )
            written = write_reports(
                settings, sessions, today, ("xlsx", "html", "csv", "json"), work / "reports"
            )
            click.echo(f"reports:   {_shown(work / 'reports')} ({len(written.files)} files)")
            _statement_and_policy(settings, sessions, result.ledgers, today, work)
            click.echo(f"config:    {_shown(config_path)}")
        finally:
            engine.dispose()
        _next_commands(_shown(config_path), today, serve=serve)
        if serve:
            _serve(base, sim.config.client_secret, sim.tls.ca, _shown(config_path))
    finally:
        sim.stop()


def _shown(path: Path | str) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    full = Path(path).resolve()
    try:
        return str(full.relative_to(Path.cwd()))
    except ValueError:
        return str(full)


def _shown_url(url: str) -> str:
    prefix = "sqlite:///"
    return prefix + _shown(url[len(prefix) :]) if url.startswith(prefix) else url


def _statement_and_policy(
    settings: Any, sessions: Any, ledgers: Any, today: date, work: Path
) -> None:
    """The statement of the customer longest overdue who has paid part (it shows every
    section: charges, products, payments and how they were applied), and the policy."""
    owing = sorted(
        (ledger for ledger in ledgers if ledger.balance > 0),
        key=lambda ledger: (ledger.paid == 0, -ledger.days_overdue, ledger.customer_id),
    )
    if owing:
        run = write_statements(
            settings,
            sessions,
            [owing[0].customer_id],
            today,
            ("html", "csv", "json"),
            work / "statements",
        )
        page = next(path for path in run.files if path.suffix == ".html")
        click.echo(f"statement: {_shown(page)} (and .csv, .json)")
    document = build_document(settings)
    for fmt in ("html", "md"):
        (work / f"collections-policy.{fmt}").write_text(render(document, fmt), encoding="utf-8")
    click.echo(f"policy:    {_shown(work / 'collections-policy.html')} (and .md)")


def _next_commands(config: str, today: date, *, serve: bool) -> None:
    """What works next: these read the demo's database, so they need no simulator."""
    run = f"pcsync --config {config}"
    click.echo("")
    click.echo("next:")
    for command in (
        f"reconcile --as-of {today}",
        f"collections plan --as-of {today}",
        f"statement --all --as-of {today}",
        "collections policy --format text",
        f"report --as-of {today}",
    ):
        click.echo(f"  {run} {command}")
    if not serve:
        click.echo("  pcsync demo --serve   # the same, then the simulator stays up for `sync`")


def _serve(base: str, secret: str, ca: Path, config: str) -> None:
    """Keep the simulator up until Ctrl-C or SIGTERM, saying what ``sync`` needs."""
    click.echo("")
    click.echo(f"serving:   the simulator stays on {base} until Ctrl-C; in another shell:")
    click.echo(f"  export {DEMO_SECRET_ENV}={secret}")
    click.echo(f"  export REQUESTS_CA_BUNDLE={ca}")
    click.echo(f"  pcsync --config {config} sync")

    def stop(_signal: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("simulator stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _demo_config(sim: Any, base: str) -> str:
    return f"""# Written by `pcsync demo`: the built-in simulator on {base}.
[partner_center]
tenant_id = "{sim.config.tenant_id}"
client_id = "{sim.config.client_id}"
client_secret_env = "{DEMO_SECRET_ENV}"
authority_host = "{base}"
api_base_url = "{base}"
graph_base_url = "{base}"
token_cache_path = "token-cache.json"

[database]
url = "sqlite:///pcsync.db"

[statements]
partner_name = "Contoso Cloud Services (demo)"
address = '''
1 Example Street
10115 Berlin, Germany'''
contact = "billing@contoso.example"

[notifications]
sender_name = "Contoso Accounts"
reply_to = "billing@contoso.example"
payment_instructions = '''
Bank transfer to Contoso Cloud Services, IBAN DE00 0000 0000 0000 0000 00,
quoting the statement's date.'''
"""
