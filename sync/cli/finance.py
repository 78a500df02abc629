"""Finance's commands: reconcile, report, statement, payments."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from reconciliation.money import money_text
from sync.audit import current_actor
from sync.cli.app import App, as_of_date, cli, customer_id_of, echo_json
from sync.display import cell, plain
from sync.payments import ImportResult, import_payments, list_payments, void_payments
from sync.reconcile import run_reconciliation, to_json
from sync.report import write_reports
from sync.statement import write_statements


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
    day = as_of_date(as_of, app.settings)
    result = run_reconciliation(app.settings, app.sessions, day)
    if as_json:
        click.echo(to_json(result.document))
        return
    reconciled = result.reconciled
    overdue = [c for c in reconciled.customers if c.days_overdue > 0]
    kinds: dict[str, int] = {}
    for finding in reconciled.findings:
        kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
    click.echo(
        f"reconciled as of {day}: {len(reconciled.customers)} customer balance(s), "
        f"{len(overdue)} overdue, {len(reconciled.invoices)} Microsoft invoice(s)"
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
    day = as_of_date(as_of, app.settings)
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
    """Write each customer's statement (tenant id, domain or name), one per currency owed.

    A customer who owes nothing gets a line saying so and no file (exit 0).
    """
    day = as_of_date(as_of, app.settings)
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
@click.option("--customer", metavar="WHO", help="Only this customer (tenant id, domain or name).")
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
        customer_id=customer_id_of(app, customer),
        import_run=import_run,
        include_voided=include_voided,
    )
    if as_json:
        echo_json({"payments": [view.as_json() for view in views]})
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
