"""Running pcsync: check, init, sync, daemon, runs, backup, the simulator."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from sync import audit
from sync.cli.app import App, cli, echo_json, log
from sync.cli.progress import sync_progress
from sync.db.engine import make_session_factory
from sync.db.migrate import upgrade
from sync.display import cell, plain, print_table
from sync.jobs import RESOURCES, SyncOptions, run_sync
from sync.runtime.runs import list_runs, recorded_run


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the items as one JSON document.")
@click.pass_obj
def check(app: App, as_json: bool) -> None:
    """Read-only preflight: config, database, sign-in, one read per API, clock, certificate."""
    from sync.check import Outcome, run_checks

    items = run_checks(app.settings, app.engine)
    failed = any(item.outcome is Outcome.FAIL for item in items)
    if as_json:
        echo_json({"ok": not failed, "items": [item.as_json() for item in items]})
    else:
        for item in items:
            line = f"{item.outcome.value:<4}  {item.name}: {item.detail}"
            click.echo(plain(line))
            if item.remedy and item.outcome is not Outcome.OK:
                click.echo(plain(f"      -> {item.remedy}"))
    if failed:
        raise click.exceptions.Exit(1)


@cli.command()
@click.pass_obj
def init(app: App) -> None:
    """Create or upgrade the database schema and check the configuration."""
    settings = app.settings
    before, after = upgrade(app.engine)
    sessions = make_session_factory(app.engine)
    with recorded_run(sessions, "init", "manual", {"from": before, "to": after}) as run:
        run.count("schema", "upgraded" if before != after else "unchanged")
    where = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"database {where}: schema {after} is current, nothing to do")
    else:
        click.echo(f"database {where}: schema {before or 'empty'} -> {after}")
    for name in audit.restore_triggers(app.engine):
        click.echo(f"audit log: trigger {name} was missing or disabled; restored")
    _first_audit_head(app, sessions, before)
    pc = settings.partner_center
    if pc.certificate_path:
        credential = f"certificate {pc.certificate_path}"
    elif pc.client_secret:
        credential = f"client secret from ${pc.client_secret_env}"
    else:
        credential = f"none yet: set ${pc.client_secret_env} or certificate_path"
    click.echo(
        f"config {settings.source}: tenant {pc.tenant_id}, cloud {pc.cloud}, "
        f"Partner Center {pc.api_base_url}, credential {credential}"
    )


def _first_audit_head(app: App, sessions: sessionmaker[Session], before: str | None) -> None:
    """Write the chain's head the first time, when this init chained the stored entries."""
    head = audit.head_path(app.settings)
    if head.exists() or before is None or before >= "0008":
        return
    check = audit.verify_chain(sessions, None)
    if check.ok and check.count:
        audit.write_head(head, check.count, check.last_hash)
        click.echo(f"audit log: {check.count} entries chained; head written to {head}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON document.")
@click.option("--limit", default=50, show_default=True, help="How many of the newest runs.")
@click.pass_obj
def runs(app: App, as_json: bool, limit: int) -> None:
    """Run history: when, what, counts, errors."""
    views = list_runs(app.sessions, limit)
    if as_json:
        echo_json({"runs": [view.as_json() for view in views]})
        return
    if not views:
        click.echo("no runs yet")
        return
    table = Table(title="pcsync runs (newest first)")
    for column in ("id", "kind", "trigger", "status", "started (UTC)", "took"):
        table.add_column(column, no_wrap=True)  # short: the long counts and errors wrap
    table.add_column("counts")
    table.add_column("error")
    for view in views:
        took = (
            f"{(view.finished_at - view.started_at).total_seconds():.1f}s"
            if view.finished_at
            else "…"
        )
        counts = counts_text(view.counts)
        table.add_row(
            str(view.id),
            view.kind,
            view.trigger,
            view.status,
            view.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            took,
            cell(counts),
            cell(view.error),
        )
    print_table(table)


@cli.command()
@click.option(
    "--only",
    default=",".join(RESOURCES),
    show_default=True,
    help="Comma-separated resources to sync.",
)
@click.option("--full", is_flag=True, help="Fetch everything again, even complete invoices.")
@click.option("--wait", is_flag=True, help="Wait for a running sync instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON document.")
@click.pass_obj
def sync(app: App, only: str, full: bool, wait: bool, as_json: bool) -> None:
    """Pull customers, subscriptions, invoices and line items from Partner Center."""
    stop = threading.Event()
    options = SyncOptions(
        only=tuple(part.strip() for part in only.split(",") if part.strip()),
        full=full,
        wait=wait,
        stop=stop,
    )
    with sync_progress(options), _stop_on_signals(stop):
        run_id = run_sync(app.settings, app.engine, app.sessions, options)
    view = next(v for v in list_runs(app.sessions, 5) if v.id == run_id)
    if as_json:
        echo_json({"run": view.as_json()})
        return
    click.echo(f"sync run {run_id} succeeded: " + counts_text(view.counts))


@cli.command()
@click.option("--sync-now", is_flag=True, help="Also run the sync once right at start.")
@click.option(
    "--metrics-port", type=int, help="Serve Prometheus /metrics and /healthz on this port."
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address for /metrics and /healthz.",
)
@click.pass_obj
def daemon(app: App, sync_now: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Run the scheduled jobs until SIGTERM/SIGINT."""
    from sync.runtime.daemon import Daemon

    service = Daemon(app.settings, app.engine, app.sessions)
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    with _stop_on_signals(service.stop):
        service.run(sync_now=sync_now, metrics=metrics)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT ask the run to stop at its next safe point instead of dying mid-write."""

    def handler(signum: int, _frame: object) -> None:
        log.warning("signal %d: stopping after the current unit of work", signum)
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def counts_text(counts: dict[str, Any]) -> str:
    return "; ".join(
        f"{resource}: " + " ".join(f"{k}={v}" for k, v in sorted(numbers.items()))
        for resource, numbers in sorted(counts.items())
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=8443, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--state-dir",
    default="simulator",
    show_default=True,
    help="Folder for the CA file and the sample payments CSV.",
)
@click.option("--seed", default=7, show_default=True, help="Seed of the generated data.")
@click.option("--customers", default=12, show_default=True)
@click.option("--invoices", default=6, show_default=True, help="Months of invoices.")
@click.option(
    "--lines-per-invoice",
    default=0,
    show_default=True,
    help="Pad each invoice with usage lines up to this count (0: natural size).",
)
@click.option(
    "--rate-limit",
    default=0,
    show_default=True,
    help="Requests per minute before answering 429 (0: never).",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    help="Share of data requests that fail (5xx, reset, truncated, slow, non-JSON).",
)
@click.option(
    "--page-cap",
    default=0,
    show_default=True,
    help="Serve at most this many items a page, whatever size is asked (0: as asked).",
)
@click.option("--token-lifetime", default=3599, show_default=True, help="Seconds.")
def simulator(
    host: str,
    port: int,
    state_dir: str,
    seed: int,
    customers: int,
    invoices: int,
    lines_per_invoice: int,
    rate_limit: int,
    fault_rate: float,
    page_cap: int,
    token_lifetime: int,
) -> None:
    """Serve the built-in Partner Center simulator over HTTPS on loopback."""
    from connectors.simulator.data import Scale
    from connectors.simulator.faults import FaultPlan
    from connectors.simulator.server import Simulator, SimulatorConfig

    config = SimulatorConfig(
        scale=Scale(customers, invoices, lines_per_invoice, seed),
        token_lifetime=token_lifetime,
        rate_limit=rate_limit,
        faults=FaultPlan(rate=fault_rate, seed=seed),
        page_cap=page_cap,
    )
    folder = Path(state_dir).resolve()
    sim = Simulator(config, folder)
    payments = folder / "sample-payments.csv"
    payments.write_text(sim.data.payments_csv(), encoding="utf-8")
    sim.start(host, port)
    base = sim.base_url
    click.echo(f"Partner Center simulator on {base}  (Ctrl-C stops it)")
    click.echo(f"  trust its certificate:  export REQUESTS_CA_BUNDLE={sim.tls.ca}")
    click.echo(f"  sign in with:           export PCSYNC_CLIENT_SECRET={config.client_secret}")
    click.echo(f"  sample payments:        {payments}")
    click.echo("  config:")
    click.echo("    [partner_center]")
    click.echo(f'    tenant_id = "{config.tenant_id}"')
    click.echo(f'    client_id = "{config.client_id}"')
    for key in ("authority_host", "api_base_url", "graph_base_url"):
        click.echo(f'    {key} = "{base}"')
    try:
        while True:
            time.sleep(3600)
    finally:
        sim.stop()


@cli.command("backup")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--run", "run_dump", is_flag=True, help="PostgreSQL: run pg_dump here.")
@click.pass_obj
def backup_command(app: App, file: Path, force: bool, run_dump: bool) -> None:
    """A consistent copy of the database, safe while a sync runs.

    SQLite: SQLite's online backup API writes FILE, one self-contained file
    (never over an existing one unless --force). PostgreSQL: prints the pg_dump
    command that backs it up and the pg_restore that restores it; --run runs
    pg_dump.
    """
    from sqlalchemy.engine import make_url

    from sync.runtime.backup import backup_sqlite, pg_dump_command, run_pg_dump

    url = app.settings.database.url
    if make_url(url).get_backend_name() == "sqlite":
        if run_dump:
            raise click.UsageError("--run is for PostgreSQL; a SQLite backup always runs")
        done = backup_sqlite(url, file, force=force)
        click.echo(
            f"backup of {done.source} (schema {done.revision or 'none'}) written to "
            f"{done.path}: {done.size / 1e6:.1f} MB in {done.seconds:.1f}s"
        )
        return
    if run_dump:
        done = run_pg_dump(url, file, force=force)
        click.echo(
            f"backup of {done.source} written to {done.path} by pg_dump: "
            f"{done.size / 1e6:.1f} MB in {done.seconds:.1f}s"
        )
        return
    dump = pg_dump_command(url, Path(file))
    click.echo(
        f"{dump.shown_url} is a PostgreSQL database: back it up with PostgreSQL's pg_dump, "
        "which takes a consistent copy while pcsync runs:\n"
        f"  {dump.command}\n"
        "restore it (pcsync stopped) with:\n"
        f"  {dump.restore}\n"
        "The password, if one is needed, comes from ~/.pgpass or PGPASSWORD, never the "
        "command line. `pcsync backup --run FILE` runs pg_dump here (PostgreSQL's client "
        "tools, as new as the server)."
    )
