"""``pcsync collections``: plan, history, approve, revoke, apply, hold, release, notify, policy."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import click
from rich.table import Table

from connectors.partner_center import PartnerCenter
from connectors.partner_center.resources import AzureEntitlement
from reconciliation.errors import InputError
from sync.audit import current_actor
from sync.cli.app import (
    BY_OPTION,
    App,
    as_of_date,
    cli,
    customer_id_of,
    echo_json,
    not_after_today,
)
from sync.collections import plan_collections
from sync.collections.apply import (
    ApplyPlan,
    Change,
    execute_apply,
    prepare_apply,
    refresh_subscriptions,
    require_today,
    settle_before_apply,
)
from sync.collections.approvals import approve, revoke
from sync.collections.holds import hold, release
from sync.collections.job import run_collections_round
from sync.collections.plan import flag_history
from sync.collections.policy_doc import FORMATS, build_document, render
from sync.collections.proposals import plan_proposals
from sync.customer_lookup import customer_names
from sync.display import cell, customer_cell, plain, print_table
from sync.errors import SafetyLimitError
from sync.partner import connect
from sync.runtime.lock import run_lock


@cli.group()
def collections() -> None:
    """Collections: who to follow up, suspend or reactivate under the policy."""


@collections.command("plan")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Default: today.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
@click.pass_obj
def collections_plan(app: App, as_of: str | None, as_json: bool) -> None:
    """Flag each customer and currency under the [collections] policy (changes nothing).

    Beside the flags: the approvals in force, and the renewal guard's
    stop_renewal actions (with their approvals) and restore_renewal actions.
    The flag history is kept by the collections round (the daemon, `notify`).
    """
    day = as_of_date(as_of, app.settings)
    plan = plan_collections(app.settings, app.sessions, day, store=False)
    proposals = plan_proposals(app.settings, app.sessions, plan, datetime.now(UTC))
    flags = plan.flags
    if as_json:
        echo_json(
            {"as_of": day.isoformat(), "flags": [f.as_json() for f in flags]} | proposals.as_json()
        )
        return
    click.echo(f"collections plan as of {day}: {len(flags)} customer balance(s) flagged")
    for flag in sorted(flags, key=lambda f: (-f.days_overdue, f.customer_name)):
        amount = flag.as_json()["overdue_amount"]
        status = ""
        if flag.action == "suspend":
            approval = proposals.approval(flag.customer_id)
            status = f" — {plain(approval.text()) if approval else 'not approved'}"
        click.echo(
            f"  {flag.action:<10} {flag.stage or '-':<14} {plain(flag.customer_name)} "
            f"({flag.currency}): {amount} overdue, {flag.days_overdue} days{status}"
        )
        if app.verbosity > 0:
            for reason in flag.reasons:
                click.echo(f"      {plain(reason)}")
    for action in proposals.renewals:
        ends = f", term ends {action.term_ends}" if action.term_ends else ""
        click.echo(
            f"  {action.action:<10} {plain(action.customer_name)} "
            f"{plain(action.subscription_name)} [{plain(action.subscription_id)}]{ends}: "
            f"{plain(action.why)} — {plain(action.needs())}"
        )


@collections.command("history")
@click.option("--customer", metavar="WHO", help="Only this customer (tenant id, domain or name).")
@click.option("--json", "as_json", is_flag=True, help="Print the stays as one JSON document.")
@click.pass_obj
def collections_history(app: App, customer: str | None, as_json: bool) -> None:
    """When each customer entered and left each stage (from the stored plans)."""
    customer_id = customer_id_of(app, customer)
    stays = flag_history(app.sessions, customer_id)
    if as_json:
        echo_json({"stays": [stay.as_json() for stay in stays]})
        return
    with app.sessions() as session:
        names = customer_names(session)
    table = Table(box=None, header_style="bold")
    for column in ("customer", "currency", "action", "stage", "entered (UTC)", "left (UTC)"):
        table.add_column(column)
    table.add_column("overdue at last plan", justify="right")
    for stay in stays:
        table.add_row(
            customer_cell(stay.customer_id, names),
            stay.currency,
            stay.action,
            cell(stay.stage or "-"),
            f"{stay.entered_at:%Y-%m-%d %H:%M}",
            f"{stay.left_at:%Y-%m-%d %H:%M}" if stay.left_at else "(current)",
            f"{stay.as_json()['overdue_amount']} as of {stay.last_as_of}",
        )
    print_table(table)


@collections.command("approve")
@click.argument("customers", nargs=-1, required=True, metavar="CUSTOMER...")
@BY_OPTION
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
    """Approve suspending these customers (tenant id, domain or name); they must be flagged suspend.

    With --stop-renewal: approve turning off auto-renew of the new-commerce
    subscriptions the renewal guard lists as renewing soon. An approval lapses
    after [collections] approval_valid_days, when the customer pays anything, or
    when it is no longer at a stage its kind needs.
    """
    day = as_of_date(as_of, app.settings)
    not_after_today(day, app.settings, "approvals are for")
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
@BY_OPTION
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
@click.option("--wait", is_flag=True, help="Wait for a running sync or apply instead of failing.")
@BY_OPTION
@click.pass_obj
def collections_apply(
    app: App, as_of: str | None, really: bool, wait: bool, by: str | None
) -> None:
    """Suspend approved customers and reactivate paid ones in Partner Center.

    Without --apply, prints exactly which subscriptions would change and why, and
    changes nothing. A run past [collections] max_suspend_customers or
    max_suspend_share is refused as a whole. --apply acts on today only; a dry
    run may look at any --as-of date. Both refresh the subscriptions they act on
    from Partner Center, so both wait for (or refuse to overlap) a running sync.
    """
    settings = app.settings
    actor = by or current_actor()
    day = as_of_date(as_of, settings)
    if really:
        require_today(day, as_of_date(None, settings))

    @functools.cache
    def partner_center() -> PartnerCenter:
        return connect(settings.partner_center)

    def refresh(customers: list[str]) -> None:
        refresh_subscriptions(app.sessions, partner_center(), customers)

    def entitlements(customer: str, plan: str) -> list[AzureEntitlement]:
        return partner_center().azure_entitlements(customer, plan)

    if not really:
        # The refresh writes subscriptions: under the sync's lock, so a sync's older
        # snapshot never lands after it.
        with run_lock(app.engine, kind="sync", wait=wait, holder="collections apply (dry run)"):
            prepared = prepare_apply(
                settings, app.sessions, day, refresh=refresh, entitlements=entitlements
            )
        _show_apply(prepared, really)
        if prepared.refusal:
            raise SafetyLimitError(f"{prepared.refusal}: --apply would be refused")
        if prepared.changes:
            click.echo("dry run: nothing changed; add --apply to make these changes")
        return
    # Decided and made under the apply's lock (two applies never act on the same plan)
    # and the sync's: a sync that read a subscription before the PATCH and wrote it
    # after would record "active" over pcsync's own suspension and end its ownership.
    # Always apply, then sync: the order every holder takes them, so none deadlocks.
    with (
        run_lock(app.engine, kind="collections_apply", wait=wait),
        run_lock(app.engine, kind="sync", wait=wait, holder="collections apply"),
    ):
        day = as_of_date(as_of, settings)  # today still, after a --wait past midnight?
        require_today(day, as_of_date(None, settings))
        # A killed run's pending attempts first: what they did decides today's plan.
        settle_before_apply(
            app.sessions, partner_center, actor, note=lambda line: click.echo(f"  {plain(line)}")
        )
        prepared = prepare_apply(
            settings,
            app.sessions,
            day,
            refresh=refresh,
            entitlements=entitlements,
            record_flags=True,
        )
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

    today = as_of_date(None, app.settings)
    outcome = execute_apply(
        app.sessions,
        prepared,
        partner_center,
        actor,
        progress,
        today=today,
        note=lambda line: click.echo(f"  {plain(line)}"),
    )
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
@BY_OPTION
@click.pass_obj
def collections_hold(app: App, customer: str, until: str, reason: str, by: str | None) -> None:
    """Pause a customer's collections until a date: flagged no further than none; audited."""
    try:
        end = date.fromisoformat(until)
    except ValueError as exc:
        raise InputError(f"--until: expected a date like 2026-12-31, got {until!r}") from exc
    today = as_of_date(None, app.settings)
    view = hold(app.sessions, customer, end, reason, by or current_actor(), today)
    click.echo(
        f"collections of {view.customer_id} on hold until {view.until} by {view.held_by} "
        f"(hold {view.id}); `pcsync collections release {customer}` ends it sooner"
    )


@collections.command("release")
@click.argument("customer", metavar="CUSTOMER")
@BY_OPTION
@click.pass_obj
def collections_release(app: App, customer: str, by: str | None) -> None:
    """End a customer's hold now: collections resume at the next plan."""
    ended = release(app.sessions, customer, by or current_actor())
    click.echo(f"released {ended} hold(s) of {customer}")


@collections.command("notify")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Plan date (default: today).")
@BY_OPTION
@click.pass_obj
def collections_notify(app: App, as_of: str | None, by: str | None) -> None:
    """Send each flagged customer its stage's notice, once (SMTP, else .eml files).

    --as-of may be a past date (a round missed), never a future one.
    """
    day = as_of_date(as_of, app.settings)
    not_after_today(day, app.settings, "notices are sent for")
    result = run_collections_round(app.settings, app.sessions, day, by or current_actor())
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
