"""``pcsync demo``: the simulator and every step end to end, in a folder of its own."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from sync.cli.app import cli
from sync.cli.ops import counts_text
from sync.collections.job import run_collections_round
from sync.config import load_settings
from sync.db.engine import make_engine, make_session_factory
from sync.db.migrate import upgrade
from sync.jobs import SyncOptions, run_sync
from sync.payments import import_payments
from sync.reconcile import run_reconciliation
from sync.report import write_reports
from sync.runs import list_runs

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
def demo(folder: str, today_text: str | None) -> None:
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
            click.echo(f"database:  {settings.database.url} (schema {after})")
            options = SyncOptions(wait=True, today=sim.data.anchor)
            run_id = run_sync(settings, engine, sessions, options)
            view = next(v for v in list_runs(sessions, 5) if v.id == run_id)
            click.echo(f"sync run {run_id}: {counts_text(view.counts)}")
            imported = import_payments(settings, sessions, payments)
            click.echo(
                f"payments:  {imported.imported} imported, {imported.unchanged} already "
                f"there, from {payments}"
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
                f"{len(round_.notices.written)} notice(s) in {settings.notifications.out_dir}"
            )
            written = write_reports(
                settings, sessions, today, ("xlsx", "html", "csv", "json"), work / "reports"
            )
            click.echo(f"reports:   {work / 'reports'} ({len(written.files)} files)")

            click.echo(f"config:    {config_path}")
        finally:
            engine.dispose()
    finally:
        sim.stop()


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
"""
