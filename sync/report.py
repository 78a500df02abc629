"""``pcsync report``: the stored reconciliation for a date, written as finance files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.document import Reconciled
from reconciliation.errors import InputError
from sync.collections import plan_collections
from sync.collections.approvals import lapse_reason
from sync.collections.plan import CollectionsPlan
from sync.completeness import data_completeness, headline
from sync.config import Settings
from sync.db.models import Action, Approval, Customer, Notice, ReconciliationRun, Subscription
from sync.reconcile import run_reconciliation
from sync.reconcile.inputs import billing_terms
from sync.reports.data import Change, ReportData
from sync.reports.html import to_html
from sync.reports.lines import LINE_COLUMNS, billed_lines, lines_tables
from sync.reports.render import to_csv, to_xlsx, write_csv
from sync.reports.staged import staged
from sync.reports.tables import report_tables
from sync.runtime import failpoints

__all__ = ["FORMATS", "ReportFiles", "write_reports"]

FORMATS = ("xlsx", "html", "csv", "json")


@dataclass(frozen=True)
class ReportFiles:
    """What was written, and from which reconciliation."""

    as_of: date
    reconciliation_id: int | None
    files: list[Path]


def _stored_document(
    sessions: sessionmaker[Session], as_of: date
) -> tuple[int, dict[str, Any]] | None:
    with sessions() as session:
        row = session.scalars(
            select(ReconciliationRun)
            .where(ReconciliationRun.as_of == as_of)
            .order_by(ReconciliationRun.id.desc())
            .limit(1)
        ).first()
        return (row.id, row.document) if row is not None else None


def _changes(sessions: sessionmaker[Session], as_of: date) -> list[Change]:
    """What pcsync changed at Microsoft up to the end of ``as_of`` (UTC), oldest first."""
    end = datetime.combine(as_of + timedelta(days=1), time(), UTC)
    with sessions() as session:
        names = {cid: name for cid, name in session.execute(select(Customer.id, Customer.name))}
        rows = session.scalars(
            select(Action)
            .where(Action.requested_at < end, Action.result != "pending")
            .order_by(Action.id)
        ).all()
        return [
            Change(
                requested_at=a.requested_at.replace(microsecond=0),  # reports show seconds
                requested_by=a.requested_by,
                customer_id=a.customer_id,
                customer_name=names.get(a.customer_id, a.customer_id),
                subscription_id=a.subscription_id,
                action=a.action,
                result=a.result,
                status_before=a.status_before,
                status_after=a.status_after,
                ms_request_id=a.ms_request_id,
                error=a.error,
            )
            for a in rows
        ]


def _products(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Each subscription's product as Partner Center names it, for the findings."""
    with sessions() as session:
        rows = session.execute(
            select(Subscription.id, Subscription.offer_name, Subscription.friendly_name)
        )
        named = ((sid, offer or friendly) for sid, offer, friendly in rows)
        return {sid: product for sid, product in named if product}


def _contacts(sessions: sessionmaker[Session]) -> dict[str, str]:
    """The address each customer's latest notice went to: the contact the report can name."""
    with sessions() as session:
        rows = session.execute(
            select(Notice.customer_id, Notice.recipient)
            .where(Notice.recipient.is_not(None))
            .order_by(Notice.id)
        )
        return {customer_id: recipient for customer_id, recipient in rows if recipient}


def _approvals(sessions: sessionmaker[Session], plan: CollectionsPlan) -> dict[str, str]:
    """Customers whose suspension is approved and in force, with who approved it and when.

    Read only: a lapsed approval is left for ``collections apply`` to revoke and audit.
    """
    now = datetime.now(UTC)
    with sessions() as session:
        approvals = session.scalars(
            select(Approval).where(Approval.revoked_at.is_(None)).order_by(Approval.id)
        ).all()
        return {
            a.customer_id: f"approved by {a.approved_by} on {a.approved_at:%Y-%m-%d}"
            for a in approvals
            if lapse_reason(a, plan, now) is None
        }


def write_reports(
    settings: Settings,
    sessions: sessionmaker[Session],
    as_of: date,
    formats: tuple[str, ...],
    out_dir: Path,
    *,
    out_setting: str = "[reports] out_dir",
) -> ReportFiles:
    """Write the chosen formats for ``as_of``, reconciling first if that date has no result.

    ``out_setting`` names where ``out_dir`` came from (``--out``) in an error.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"--format: unknown format {unknown[0]!r}; use {', '.join(FORMATS)}")
    _make_folder(out_dir, out_setting)  # before reconciling: a bad folder changes nothing
    stored = _stored_document(sessions, as_of)
    if stored is None:
        run_reconciliation(settings, sessions, as_of)
        stored = _stored_document(sessions, as_of)
    assert stored is not None
    reconciliation_id, stored_document = stored
    plan = plan_collections(settings, sessions, as_of, store=False)
    completeness = data_completeness(sessions)
    terms = billing_terms(settings)
    with sessions() as session:
        lines, margin, line_count = lines_tables(session, terms, as_of)
    data = ReportData(
        reconciled=Reconciled.from_document(stored_document),  # the one read of the document
        flags=plan.flags,
        changes=_changes(sessions, as_of),
        completeness=completeness,
        products=_products(sessions),
        contacts=_contacts(sessions),
        approvals=_approvals(sessions, plan),
        margin=margin.rows,
    )
    stem = f"pcsync-{as_of.isoformat()}"
    tables = [*report_tables(data), lines, margin]
    if line_count > len(lines.rows):  # the sheet says where the rest is
        note = f"{line_count:,} lines: the first {len(lines.rows):,} here, all in the CSV"
        lines = replace(lines, rows=[*lines.rows, {"customer_name": note}])
        tables[-2] = lines
    files = []
    with staged("report") as out:  # every file whole, or the former ones kept
        if "xlsx" in formats:
            path = out_dir / f"{stem}.xlsx"
            title = f"{settings.reports.title} as of {as_of} — {headline(completeness)}"
            out.write(path, to_xlsx(tables, title, as_of.isoformat()))
            files.append(path)
        if "html" in formats:
            path = out_dir / f"{stem}.html"
            page = to_html(data, f"{settings.reports.title} — {as_of}")
            out.write(path, page.encode("utf-8"))
            files.append(path)
        if "csv" in formats:
            for table in tables:
                path = out_dir / f"{stem}-{_slug(table.name)}.csv"
                if table.name == "Lines":  # every line, streamed: it may be millions
                    with sessions() as session, out.open(path, "utf-8-sig") as f:
                        write_csv(f, LINE_COLUMNS, _passing(billed_lines(session, terms, as_of)))
                else:
                    # With a byte order mark: Excel reads the file as UTF-8 only then, and
                    # would otherwise garble accented customer names.
                    out.write(path, to_csv(table).encode("utf-8-sig"))
                files.append(path)
        if "json" in formats:
            path = out_dir / f"{stem}.json"
            document = data.as_json(stored_document)  # the stored document as it was
            out.write(path, json.dumps(document, indent=2, sort_keys=True).encode("utf-8"))
            files.append(path)
    return ReportFiles(as_of, reconciliation_id, files)


def _passing(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        failpoints.reached("report.lines")
        yield row


def _slug(name: str) -> str:
    """A table's name as a file-name part: lower case, words joined by "-", no "&"."""
    return "-".join(re.findall(r"[a-z0-9]+", name.lower()))


def _make_folder(folder: Path, setting: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise InputError(
            f"{setting}: {folder} is a file, not a folder; name a folder for the reports"
        ) from exc
    except OSError as exc:
        raise InputError(
            f"{setting}: cannot create the folder {folder} ({exc.strerror}); name a folder "
            "pcsync may write to"
        ) from exc
