"""``pcsync audit``: the audit log and the proof of its hash chain."""

from __future__ import annotations

import click
from rich.table import Table

from reconciliation.errors import DataError
from sync import audit
from sync.audit import list_audit
from sync.cli.app import App, cli, customer_id_of, echo_json
from sync.customer_lookup import customer_names
from sync.display import cell, customer_cell, print_table


@cli.group("audit", invoke_without_command=True)
@click.option("--customer", metavar="WHO", help="Only this customer (tenant id, domain or name).")
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
    customer_id = customer_id_of(app, customer)
    entries = list_audit(app.sessions, customer_id, limit)
    if as_json:
        echo_json({"entries": [entry.as_json() for entry in entries]})
        return
    with app.sessions() as session:
        names = customer_names(session)
    table = Table(box=None, header_style="bold")
    for column in ("at (UTC)", "actor", "event", "customer", "subscription", "details"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            cell(entry.actor),
            cell(entry.event),
            customer_cell(entry.customer_id, names),
            cell(entry.subscription_id),
            cell(", ".join(f"{k}={v}" for k, v in sorted(entry.details.items()))),
        )
    print_table(table)


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
