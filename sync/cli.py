"""The ``pcsync`` command line.

Every command loads the settings once, does its work through the same
functions the scheduler calls, and turns pcsync's errors into one actionable
line on stderr: exit 2 for usage and configuration, 1 for failures at run
time. ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter
from connectors.partner_center.resources import AzureEntitlement
from reconciliation.errors import (
    ConfigError,
    DatabaseError,
    DataError,
    InputError,
    PcsyncError,
    SafetyLimitError,
)
from reconciliation.money import money_text
from reconciliation.text import one_line
from sync import __version__, audit
from sync.audit import current_actor, list_audit
from sync.collections import plan_collections
from sync.collections.apply import (
    ApplyPlan,
    Change,
    execute_apply,
    prepare_apply,
    refresh_subscriptions,
    require_today,
)
from sync.collections.approvals import approve, resolve_customers, revoke, valid_approvals
from sync.collections.holds import hold, release
from sync.collections.job import run_collections_round
from sync.collections.plan import flag_history
from sync.collections.policy_doc import FORMATS, build_document, render
from sync.config import Settings, load_settings, resolve_config_path
from sync.db.engine import make_engine, make_session_factory, ping
from sync.db.migrate import require_current, upgrade
from sync.display import cell, markup, plain
from sync.jobs import RESOURCES, SyncOptions, run_sync
from sync.lock import run_lock
from sync.logs import LogFormat, configure_logging, redact
from sync.partner import connect
from sync.payment_records import list_payments, void_payments
from sync.payments import ImportResult, import_payments
from sync.reconcile import run_reconciliation, to_json
from sync.report import write_reports
from sync.runs import list_runs, recorded_run
from sync.statement import write_statements

__all__ = ["cli", "main"]

log = logging.getLogger("pcsync")


@dataclass
class App:
    """What a command needs, built lazily so ``--help`` works without a config file."""

    config_path: Path
    verbosity: int
    log_format: LogFormat
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            secrets = (
                self._settings.partner_center.client_secret,
                self._settings.notifications.webhook_url,
            )
            configure_logging(
                self.verbosity,
                self.log_format,
                [secret.get_secret_value() for secret in secrets if secret],
            )
        return self._settings

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings.database.url)
        ping(engine)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database whose schema is current (else: run `pcsync init`)."""
        require_current(self.engine)
        sessions = make_session_factory(self.engine)
        audit.attach_head(sessions, audit.head_path(self.settings))
        return sessions

    def close(self) -> None:
        """Release database connections (called when the command ends, even on error)."""
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.dispose()


_state: dict[str, Any] = {"verbose": False}


def _echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $PCSYNC_CONFIG, else ./pcsync.toml).",
)
@click.option("-v", "--verbose", count=True, help="More detail; with errors, the traceback.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text or JSON.",
)
@click.version_option(__version__, prog_name="pcsync")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, log_format: str
) -> None:
    """Partner Center billing sync, reconciliation and collections for CSP partners."""
    verbosity = -1 if quiet else verbose
    _state["verbose"] = verbose > 0
    fmt: LogFormat = "json" if log_format == "json" else "text"
    configure_logging(verbosity, fmt)
    app = App(resolve_config_path(config_path, os.environ), verbosity, fmt)
    _state["app"] = app
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the items as one JSON document.")
@click.pass_obj
def check(app: App, as_json: bool) -> None:
    """Read-only preflight: config, database, sign-in, one read per API, clock, certificate."""
    from sync.check import Outcome, run_checks

    items = run_checks(app.settings, app.engine)
    failed = any(item.outcome is Outcome.FAIL for item in items)
    if as_json:
        _echo_json({"ok": not failed, "items": [item.as_json() for item in items]})
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
        _echo_json({"runs": [view.as_json() for view in views]})
        return
    if not views:
        click.echo("no runs yet")
        return
    table = Table(title="pcsync runs (newest first)")
    for column in ("id", "kind", "trigger", "status", "started (UTC)", "took", "counts", "error"):
        table.add_column(column)
    for view in views:
        took = (
            f"{(view.finished_at - view.started_at).total_seconds():.1f}s"
            if view.finished_at
            else "…"
        )
        counts = _counts_text(view.counts)
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
    Console(soft_wrap=True).print(table)


@cli.command()
@click.option(
    "--only",
    default=",".join(RESOURCES),
    show_default=True,
    help="Comma-separated resources to sync.",
)
@click.option("--full", is_flag=True, help="Fetch everything again, even complete invoices.")
@click.option("--wait", is_flag=True, help="Wait for a running sync instead of failing.")
@click.pass_obj
def sync(app: App, only: str, full: bool, wait: bool) -> None:
    """Pull customers, subscriptions, invoices and line items from Partner Center."""
    with _progress_reporter() as report, _stop_on_signals(stop := threading.Event()):
        options = SyncOptions(
            only=tuple(part.strip() for part in only.split(",") if part.strip()),
            full=full,
            wait=wait,
            stop=stop,
            on_progress=report,
        )
        run_id = run_sync(app.settings, app.engine, app.sessions, options)
    view = next(v for v in list_runs(app.sessions, 5) if v.id == run_id)
    click.echo(f"sync run {run_id} succeeded: " + _counts_text(view.counts))


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
    from sync.daemon import Daemon

    service = Daemon(app.settings, app.engine, app.sessions)
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    with _stop_on_signals(service.stop):
        service.run(sync_now=sync_now, metrics=metrics)


@contextmanager
def _progress_reporter() -> Iterator[Callable[[str, int], None]]:
    """A live line counter per invoice on a terminal; periodic log lines otherwise."""
    if not sys.stderr.isatty():
        totals: dict[str, int] = {}

        def log_progress(label: str, n: int) -> None:
            totals[label] = totals.get(label, 0) + n
            if totals[label] % 50_000 == 0:
                log.info("invoice %s: %d lines so far", label, totals[label])

        yield log_progress
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} lines"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        tasks: dict[str, TaskID] = {}

        def show(label: str, n: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(f"invoice {markup(label)}", total=None)
            progress.advance(tasks[label], n)

        yield show


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


def _counts_text(counts: dict[str, Any]) -> str:
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


def _as_of(value: str | None, settings: Settings) -> date:
    if value is None:
        return datetime.now(ZoneInfo(settings.schedule.timezone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"--as-of: expected a date like 2026-11-25, got {value!r}") from exc


@cli.command("reconcile")
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    help="The day to reconcile as of (default: today in [schedule] timezone).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON.")
@click.pass_obj
def reconcile_command(app: App, as_of: str | None, as_json: bool) -> None:
    """Reconcile Microsoft's bill, customers' charges and payments as of a date."""
    day = _as_of(as_of, app.settings)
    result = run_reconciliation(app.settings, app.sessions, day)
    if as_json:
        click.echo(to_json(result.document))
        return
    document = result.document
    overdue = [c for c in document["customers"] if c["days_overdue"] > 0]
    kinds: dict[str, int] = {}
    for finding in document["findings"]:
        kinds[finding["kind"]] = kinds.get(finding["kind"], 0) + 1
    click.echo(
        f"reconciled as of {day}: {len(document['customers'])} customer balance(s), "
        f"{len(overdue)} overdue, {len(document['invoices'])} Microsoft invoice(s)"
    )
    for kind, count in sorted(kinds.items()):
        click.echo(f"  {kind}: {count}")


@cli.command()
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Default: today.")
@click.option(
    "--format",
    "formats",
    default="xlsx,html,csv,json",
    show_default=True,
    help="Comma-separated: xlsx, html, csv, json.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder for the files (default: [reports] out_dir).",
)
@click.pass_obj
def report(app: App, as_of: str | None, formats: str, out_dir: Path | None) -> None:
    """Write finance reports from the stored reconciliation (reconciling first if needed)."""
    day = _as_of(as_of, app.settings)
    chosen = tuple(part.strip() for part in formats.split(",") if part.strip())
    result = write_reports(
        app.settings,
        app.sessions,
        day,
        chosen,
        out_dir or app.settings.reports.out_dir,
        out_setting="--out" if out_dir else "[reports] out_dir",
    )
    for path in result.files:
        click.echo(str(path))


@cli.command()
@click.argument("customers", nargs=-1)
@click.option("--all", "every_customer", is_flag=True, help="Every customer with a balance.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Default: today.")
@click.option(
    "--format",
    "formats",
    default="html,csv,json",
    show_default=True,
    help="Comma-separated: html, csv, json.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder for the files (default: [statements] out_dir).",
)
@click.pass_obj
def statement(
    app: App,
    customers: tuple[str, ...],
    every_customer: bool,
    as_of: str | None,
    formats: str,
    out_dir: Path | None,
) -> None:
    """Write each customer's statement (tenant id or domain), one per currency owed.

    A customer who owes nothing gets a line saying so and no file (exit 0).
    """
    day = _as_of(as_of, app.settings)
    chosen = tuple(part.strip() for part in formats.split(",") if part.strip())
    written = write_statements(
        app.settings,
        app.sessions,
        customers,
        day,
        chosen,
        out_dir or app.settings.statements.out_dir,
        every_customer=every_customer,
    )
    for line in written.nothing_owed:
        click.echo(plain(line))
    for path in written.files:
        click.echo(str(path))


@cli.group()
def collections() -> None:
    """Collections: who to follow up, suspend or reactivate under the policy."""


@collections.command("plan")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Default: today.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
@click.pass_obj
def collections_plan(app: App, as_of: str | None, as_json: bool) -> None:
    """Flag each customer and currency under the [collections] policy (changes nothing).

    The flags are kept as history: when each customer entered and left each stage.
    """
    day = _as_of(as_of, app.settings)
    plan = plan_collections(app.settings, app.sessions, day)
    flags = plan.flags
    if as_json:
        _echo_json({"as_of": day.isoformat(), "flags": [f.as_json() for f in flags]})
        return
    with app.sessions.begin() as session:
        approved = {
            customer: f"approved by {plain(a.approved_by)} until {a.expires_at:%Y-%m-%d %H:%M} UTC"
            for customer, a in valid_approvals(
                session, plan, current_actor(), datetime.now(UTC)
            ).items()
        }
    click.echo(f"collections plan as of {day}: {len(flags)} customer balance(s) flagged")
    for flag in sorted(flags, key=lambda f: (-f.days_overdue, f.customer_name)):
        amount = flag.as_json()["overdue_amount"]
        status = ""
        if flag.action == "suspend":
            status = f" — {approved.get(flag.customer_id, 'not approved')}"
        click.echo(
            f"  {flag.action:<10} {flag.stage or '-':<14} {plain(flag.customer_name)} "
            f"({flag.currency}): {amount} overdue, {flag.days_overdue} days{status}"
        )
        if app.verbosity > 0:
            for reason in flag.reasons:
                click.echo(f"      {plain(reason)}")


def _customer_id(app: App, given: str | None) -> str | None:
    """A ``--customer`` value (tenant id or domain) as a customer id."""
    if given is None:
        return None
    with app.sessions() as session:
        return resolve_customers(session, [given])[given]


@collections.command("history")
@click.option("--customer", metavar="ID", help="Only this customer (tenant id or domain).")
@click.option("--json", "as_json", is_flag=True, help="Print the stays as one JSON document.")
@click.pass_obj
def collections_history(app: App, customer: str | None, as_json: bool) -> None:
    """When each customer entered and left each stage (from the stored plans)."""
    customer_id = _customer_id(app, customer)
    stays = flag_history(app.sessions, customer_id)
    if as_json:
        _echo_json({"stays": [stay.as_json() for stay in stays]})
        return
    table = Table(box=None, header_style="bold")
    for column in ("customer", "currency", "action", "stage", "entered (UTC)", "left (UTC)"):
        table.add_column(column)
    table.add_column("overdue at last plan", justify="right")
    for stay in stays:
        table.add_row(
            cell(stay.customer_id),
            stay.currency,
            stay.action,
            cell(stay.stage or "-"),
            f"{stay.entered_at:%Y-%m-%d %H:%M}",
            f"{stay.left_at:%Y-%m-%d %H:%M}" if stay.left_at else "(current)",
            f"{stay.as_json()['overdue_amount']} as of {stay.last_as_of}",
        )
    Console(soft_wrap=True).print(table)


_BY = click.option("--by", "by", metavar="NAME", help="Who is acting (default: the OS user).")


@collections.command("approve")
@click.argument("customers", nargs=-1, required=True, metavar="CUSTOMER...")
@_BY
@click.option("--note", metavar="TEXT", help="Why, for the audit log.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Plan date (default: today).")
@click.option(
    "--stop-renewal",
    "stop_renewal",
    is_flag=True,
    help="Approve turning auto-renew off (renewal guard) instead of suspending; "
    "the customers must be flagged follow_up or suspend.",
)
@click.pass_obj
def collections_approve(
    app: App,
    customers: tuple[str, ...],
    by: str | None,
    note: str | None,
    as_of: str | None,
    stop_renewal: bool,
) -> None:
    """Approve suspending these customers (tenant id or domain); they must be flagged suspend.

    With --stop-renewal: approve turning off auto-renew of the new-commerce
    subscriptions the renewal guard lists as renewing soon. An approval lapses
    after [collections] approval_valid_days, when the customer pays anything, or
    when it is no longer at a stage its kind needs.
    """
    day = _as_of(as_of, app.settings)
    kind: Literal["suspend", "stop_renewal"] = "stop_renewal" if stop_renewal else "suspend"
    views = approve(
        app.settings, app.sessions, list(customers), day, by or current_actor(), note, kind
    )
    what = "stopping the renewals of" if stop_renewal else "suspending"
    for view in views:
        click.echo(
            f"approved {what} {plain(view.customer_name)} ({plain(view.customer_id)}) "
            f"by {plain(view.approved_by)}, "
            f"valid until {view.expires_at:%Y-%m-%d %H:%M} UTC (approval {view.id})"
        )
    click.echo("run `pcsync collections apply` to review, then add --apply to make the changes")


@collections.command("revoke")
@click.argument("customers", nargs=-1, required=True, metavar="CUSTOMER...")
@_BY
@click.option("--note", metavar="TEXT", help="Why, for the audit log.")
@click.pass_obj
def collections_revoke(
    app: App, customers: tuple[str, ...], by: str | None, note: str | None
) -> None:
    """Withdraw the approvals in force for these customers."""
    withdrawn = revoke(app.sessions, list(customers), by or current_actor(), note)
    click.echo(f"withdrew {len(withdrawn)} approval(s)")


@collections.command("apply")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Plan date (default: today).")
@click.option("--apply", "really", is_flag=True, help="Make the changes (default: dry run).")
@_BY
@click.pass_obj
def collections_apply(app: App, as_of: str | None, really: bool, by: str | None) -> None:
    """Suspend approved customers and reactivate paid ones in Partner Center.

    Without --apply, prints exactly which subscriptions would change and why, and
    changes nothing. A run past [collections] max_suspend_customers or
    max_suspend_share is refused as a whole. --apply acts on today only; a dry
    run may look at any --as-of date.
    """
    settings = app.settings
    actor = by or current_actor()
    day = _as_of(as_of, settings)
    if really:
        require_today(day, _as_of(None, settings))

    @functools.cache
    def partner_center() -> PartnerCenter:
        return connect(settings.partner_center)

    def refresh(customers: list[str]) -> None:
        refresh_subscriptions(app.sessions, partner_center(), customers)

    def entitlements(customer: str, plan: str) -> list[AzureEntitlement]:
        return partner_center().azure_entitlements(customer, plan)

    if not really:
        prepared = prepare_apply(settings, app.sessions, day, actor, refresh, entitlements)
        _show_apply(prepared, really)
        if prepared.refusal:
            raise SafetyLimitError(f"{prepared.refusal}: --apply would be refused")
        if prepared.changes:
            click.echo("dry run: nothing changed; add --apply to make these changes")
        return
    # Decided and made under one lock: two applies never act on the same plan.
    with run_lock(app.engine, kind="collections_apply"):
        prepared = prepare_apply(settings, app.sessions, day, actor, refresh, entitlements)
        _show_apply(prepared, really)
        _execute_apply(app, prepared, actor, partner_center)


def _execute_apply(
    app: App, prepared: ApplyPlan, actor: str, partner_center: Callable[[], PartnerCenter]
) -> None:
    def progress(change: Change, result: str, error: str | None) -> None:
        click.echo(
            f"  {change.action} {plain(change.subscription_id)} "
            f"({plain(change.customer_name)}): {result}" + (f": {plain(error)}" if error else "")
        )

    today = _as_of(None, app.settings)
    outcome = execute_apply(app.sessions, prepared, partner_center, actor, progress, today=today)
    done = ", ".join(f"{n} {what}" for what, n in outcome.counts.items()) or "nothing to do"
    click.echo(f"apply run {outcome.run_id}: {done}")


def _show_apply(prepared: ApplyPlan, really: bool) -> None:
    verb = "changing" if really else "would change"
    click.echo(
        f"collections apply as of {prepared.as_of}: {verb} {len(prepared.changes)} "
        f"subscription(s); suspending {prepared.suspend_customers} of the "
        f"{prepared.active_customers} customers with active subscriptions"
        + (
            f"; stopping the renewals of {prepared.stop_renewal_customers}"
            if prepared.stop_renewal_customers
            else ""
        )
    )
    if prepared.interrupted:
        click.echo(f"  {prepared.interrupted} interrupted attempt(s) of an earlier run to settle")
    for change in prepared.changes:
        click.echo(
            f"  {change.action:<10} {plain(change.customer_name)} ({plain(change.customer_id)}) "
            f"{plain(change.subscription_name)} [{plain(change.subscription_id)}], "
            f"now {plain(change.status_now)}: {plain(change.why)}"
        )
    for waiting in prepared.waiting:
        click.echo(
            f"  waiting    {plain(waiting.customer_name)} ({plain(waiting.customer_id)}): "
            f"{plain(waiting.why)}"
        )


@collections.command("hold")
@click.argument("customer", metavar="CUSTOMER")
@click.option("--until", "until", required=True, metavar="YYYY-MM-DD", help="Collections resume.")
@click.option("--reason", required=True, metavar="TEXT", help="Why (dispute, promise to pay).")
@_BY
@click.pass_obj
def collections_hold(app: App, customer: str, until: str, reason: str, by: str | None) -> None:
    """Pause a customer's collections until a date: flagged no further than none; audited."""
    try:
        end = date.fromisoformat(until)
    except ValueError as exc:
        raise InputError(f"--until: expected a date like 2026-12-31, got {until!r}") from exc
    today = _as_of(None, app.settings)
    view = hold(app.sessions, customer, end, reason, by or current_actor(), today)
    click.echo(
        f"collections of {view.customer_id} on hold until {view.until} by {view.held_by} "
        f"(hold {view.id}); `pcsync collections release {customer}` ends it sooner"
    )


@collections.command("release")
@click.argument("customer", metavar="CUSTOMER")
@_BY
@click.pass_obj
def collections_release(app: App, customer: str, by: str | None) -> None:
    """End a customer's hold now: collections resume at the next plan."""
    ended = release(app.sessions, customer, by or current_actor())
    click.echo(f"released {ended} hold(s) of {customer}")


@collections.command("notify")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Plan date (default: today).")
@_BY
@click.pass_obj
def collections_notify(app: App, as_of: str | None, by: str | None) -> None:
    """Send each flagged customer its stage's notice, once (SMTP, else .eml files)."""
    result = run_collections_round(
        app.settings, app.sessions, _as_of(as_of, app.settings), by or current_actor()
    )
    for path in result.notices.written:
        click.echo(plain(path))
    click.echo(result.summary())


@collections.command("policy")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="Markdown, self-contained printable HTML, or plain text.",
)
@click.option("--policy", "policy", metavar="NAME", help="Only [collections.policies.NAME].")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), help="Write to this file (default: stdout)."
)
@click.pass_obj
def collections_policy(app: App, fmt: str, policy: str | None, out: Path | None) -> None:
    """The enforced collections policy as a document to publish or send to customers."""
    text = render(build_document(app.settings, policy=policy), fmt)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out: cannot write {out}: {exc.strerror or exc}") from exc
    click.echo(str(out))


@cli.group("audit", invoke_without_command=True)
@click.option("--customer", metavar="ID", help="Only this customer (tenant id or domain).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as one JSON document.")
@click.pass_context
def audit_command(
    ctx: click.Context, customer: str | None, limit: int | None, as_json: bool
) -> None:
    """The audit log: approvals, suspensions, reactivations, notices and refusals."""
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    customer_id = _customer_id(app, customer)
    entries = list_audit(app.sessions, customer_id, limit)
    if as_json:
        _echo_json({"entries": [entry.as_json() for entry in entries]})
        return
    table = Table(box=None, header_style="bold")
    for column in ("at (UTC)", "actor", "event", "customer", "subscription", "details"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            cell(entry.actor),
            cell(entry.event),
            cell(entry.customer_id),
            cell(entry.subscription_id),
            cell(", ".join(f"{k}={v}" for k, v in sorted(entry.details.items()))),
        )
    Console(soft_wrap=True).print(table)


@audit_command.command("verify")
@click.pass_obj
def audit_verify(app: App) -> None:
    """Prove the audit log: every entry's hash chain and the head kept outside the database.

    Exit 1 with the first broken link, or a head that does not match.
    """
    check = audit.verify_chain(app.sessions, audit.head_path(app.settings))
    if not check.ok:
        raise DataError(check.text())
    click.echo(check.text())


@cli.group()
def payments() -> None:
    """Customer payments: import exports from the finance system, list them, void wrong ones."""


@payments.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and report; store nothing.")
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Import the good rows; write the bad ones to FILE.rejected.csv.",
)
@click.pass_obj
def payments_import(app: App, file: Path, dry_run: bool, skip_bad_rows: bool) -> None:
    """Import customer payments from a CSV or XLSX file (idempotent by reference)."""
    result = import_payments(
        app.settings, app.sessions, file, dry_run=dry_run, skip_bad_rows=skip_bad_rows
    )
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{plain(file.name)}: {verb} {result.imported} payment(s), {result.unchanged} already "
        f"imported, {result.rejected} row(s) rejected"
        + (f" (see {plain(result.rejects_file)})" if result.rejects_file else "")
        + (f" (import run {result.run_id})" if result.run_id is not None else "")
    )
    _show_import_notes(result)


def _show_import_notes(result: ImportResult) -> None:
    """Rows that match voided payments; customers the new payments leave in credit."""
    if result.voided:
        click.echo(
            f"  {result.voided} row(s) match voided payments and stay voided "
            "(a corrected payment needs a reference of its own)"
        )
    if not result.in_credit:
        return
    left = "would leave" if result.dry_run else "leave"
    click.echo(f"  these payments {left} {len(result.in_credit)} customer balance(s) in credit:")
    for credit in result.in_credit:
        shown = money_text(credit.currency)
        payments = ", ".join(
            f"{plain(p.reference)} {p.payment_date} {shown(p.amount)}" for p in credit.payments
        ) + (f" and {credit.more} more" if credit.more else "")
        click.echo(
            f"    {plain(credit.customer_name)} ({plain(credit.customer_id)}) {credit.currency}: "
            f"balance {shown(credit.balance)} as of {credit.as_of} after "
            f"{shown(credit.imported)} from this file ({payments})"
        )


@payments.command("list")
@click.option("--customer", metavar="ID", help="Only this customer (tenant id or domain).")
@click.option("--import", "import_run", type=int, metavar="RUN", help="Only this import's run.")
@click.option("--include-voided", is_flag=True, help="Show voided payments too.")
@click.option("--json", "as_json", is_flag=True, help="Print the payments as one JSON document.")
@click.pass_obj
def payments_list(
    app: App, customer: str | None, import_run: int | None, include_voided: bool, as_json: bool
) -> None:
    """Imported payments: customer, date, amount, reference, import run, voided or not."""
    views = list_payments(
        app.sessions,
        customer_id=_customer_id(app, customer),
        import_run=import_run,
        include_voided=include_voided,
    )
    if as_json:
        _echo_json({"payments": [view.as_json() for view in views]})
        return
    if not views:
        click.echo("no payments" + ("" if include_voided else " (add --include-voided for all)"))
        return
    table = Table(box=None)
    for column in ("date", "customer", "customer id", "amount", "currency", "reference",
                   "invoice", "import run", "voided"):  # fmt: skip
        # folded, never cut: a reference is what `payments void` is given
        table.add_column(column, justify="right" if column == "amount" else "left", overflow="fold")
    for view in views:
        voided = (
            f"{view.voided_at:%Y-%m-%d} by {view.voided_by}: {view.void_reason}"
            if view.voided_at
            else ""
        )
        table.add_row(
            view.payment_date.isoformat(),
            cell(view.customer_name),
            cell(view.customer_id),
            money_text(view.currency)(view.amount),
            view.currency,
            cell(view.reference),
            cell(view.invoice_id),
            "" if view.import_run is None else str(view.import_run),
            cell(voided),
        )
    console = Console()
    if not console.is_terminal:  # a file or a pipe: one line per payment, however long
        console = Console(width=100_000)
    console.print(table)


@payments.command("void")
@click.argument("references", nargs=-1, metavar="REFERENCE…")
@click.option("--import", "import_run", type=int, metavar="RUN", help="Void a whole import.")
@click.option("--reason", required=True, help="Why the payments are voided (kept and audited).")
@click.option("--by", help="Who voids them (default: the OS user).")
@click.pass_obj
def payments_void(
    app: App, references: tuple[str, ...], import_run: int | None, reason: str, by: str | None
) -> None:
    """Void wrong payments: kept with who, when and why, audited, and no longer counted.

    All or nothing: an unknown or already voided reference voids nothing. Import
    the corrected payment under a reference of its own.
    """
    if bool(references) == (import_run is not None):
        raise click.UsageError("name the payments to void: REFERENCE… or --import RUN")
    result = void_payments(
        app.sessions,
        references=references,
        import_run=import_run,
        reason=reason,
        by=by or current_actor(),
    )
    click.echo(result.text())


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

    from sync.backup import backup_sqlite, pg_dump_command, run_pg_dump

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


DEMO_SECRET_ENV = "PCSYNC_DEMO_CLIENT_SECRET"  # noqa: S105 - a variable name


@cli.command()
@click.option("--dir", "folder", default="demo", show_default=True, help="Working folder.")
def demo(folder: str) -> None:
    """Run pcsync end to end against the built-in simulator, in a working folder."""
    from connectors.simulator.server import Simulator, SimulatorConfig

    work = Path(folder).resolve()
    work.mkdir(parents=True, exist_ok=True)
    sim = Simulator(SimulatorConfig(page_cap=5), work / "simulator")
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
            run_id = run_sync(settings, engine, sessions, SyncOptions(wait=True))
            view = next(v for v in list_runs(sessions, 5) if v.id == run_id)
            click.echo(f"sync run {run_id}: {_counts_text(view.counts)}")
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pcsync`` script; returns the exit code."""
    try:
        code = _run(argv)
    except PcsyncError as exc:
        if _state["verbose"]:  # through the log's formatter: masked, and JSON when asked
            log.error("%s", one_line(str(exc)), exc_info=exc)
        problems: tuple[str, ...] = getattr(exc, "problems", (str(exc),))
        if isinstance(exc, ConfigError) and problems != (str(exc),):  # one line per problem
            where = str(exc).split(":", 1)[0]
            for problem in problems:
                _error_line(f"{where}: {problem}")
        else:
            for problem in problems if problems != (str(exc),) else ():
                _error_line(problem)
            _error_line(str(exc))
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("pcsync: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("pcsync: interrupted", err=True)
        return 130
    except SQLAlchemyError as exc:
        return _unexpected(exc, "database error", "check [database] url and that the database runs")
    except Exception as exc:
        return _unexpected(exc, "internal error", "please report it with the log")
    return code


def _run(argv: list[str] | None) -> int:
    """Run the command; its exit code (a command's ``Exit(n)``, as click hands it back)."""
    try:
        returned = cli.main(args=argv, prog_name="pcsync", standalone_mode=False)
        return returned if isinstance(returned, int) else 0
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        app = _state.get("app")
        engine = app.__dict__.get("engine") if isinstance(app, App) else None
        where = f" {engine.url.render_as_string(hide_password=True)}" if engine else ""
        raise DatabaseError(
            f"lost the connection to the database{where} ({_first_line(exc)}); the "
            "interrupted work was rolled back: check that the database runs, then run "
            "the command again"
        ) from exc


def _first_line(exc: BaseException) -> str:
    origin = getattr(exc, "orig", None) or exc
    return (str(origin).strip().splitlines() or [type(origin).__name__])[0][:300]


def _error_line(text: str) -> None:
    """One ``pcsync: error:`` line: masked, and inert on a terminal (it may quote Microsoft)."""
    click.echo(f"pcsync: error: {one_line(redact(text))}", err=True)


def _unexpected(exc: BaseException, what: str, remedy: str) -> int:
    """One masked line for an error nobody raised on purpose; the traceback goes to the log.

    A bare traceback would bypass the secret masking and ``--log-format json``.
    """
    first = _first_line(exc)
    if "database is locked" in first:
        remedy = "another process held a write lock too long; retry when the sync has finished"
    if _state["verbose"]:  # through the log's formatter: masked, and JSON when asked
        logging.getLogger("pcsync").error("%s: %s", what, first, exc_info=exc)
    _error_line(f"{what}: {first} ({remedy})")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
