"""``pcsync payments import``: a payment file into the database, all or nothing.

A file with any bad row imports nothing and lists every problem, unless the
user asks to skip bad rows (then the rejects go to ``<file>.rejected.csv``
beside it). The reference makes a payment unique: importing the same file
twice adds nothing, and a reference reused with different content is an error.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.payments.files import PaymentRow, RowProblem, read_payment_file
from reconciliation.errors import InputError
from sync.config import Settings
from sync.db.models import Customer, Payment, PaymentImport
from sync.runs import recorded_run
from sync.store import content_hash

__all__ = ["ImportResult", "count_payments", "import_payments"]


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, dry-run, would do)."""

    rows_read: int
    imported: int
    unchanged: int
    rejected: int
    rejects_file: Path | None
    dry_run: bool


def _resolver(session: Session) -> dict[str, str]:
    known: dict[str, str] = {}
    for customer_id, domain in session.execute(select(Customer.id, Customer.domain)):
        known[customer_id.lower()] = customer_id
        if domain:
            known[domain.lower()] = customer_id
    return known


def _digest(row: PaymentRow) -> str:
    return content_hash(
        {
            "customer": row.customer_id,
            "date": row.payment_date.isoformat(),
            "amount": str(row.amount),
            "currency": row.currency,
            "invoice": row.invoice_id or "",
        }
    )


def _write_rejects(path: Path, problems: list[RowProblem]) -> Path:
    target = path.with_name(path.stem + ".rejected.csv")
    by_row: dict[int, RowProblem] = {}
    reasons: dict[int, list[str]] = {}
    for problem in problems:
        by_row.setdefault(problem.row, problem)
        reasons.setdefault(problem.row, []).append(f"{problem.field}: {problem.reason}")
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        fields = list(by_row[next(iter(by_row))].values) if by_row else []
        writer.writerow(["row", *fields, "problem"])
        for row, problem in sorted(by_row.items()):
            writer.writerow([row, *problem.values.values(), "; ".join(reasons[row])])
    return target


def import_payments(
    settings: Settings,
    sessions: sessionmaker[Session],
    path: Path,
    *,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
) -> ImportResult:
    """Validate every row of ``path``, then store the payments in one transaction."""
    with sessions() as session:
        known = _resolver(session)
        existing = dict(session.execute(select(Payment.reference, Payment.content_hash)).all())
    columns = settings.payments.columns.model_dump()
    parsed = read_payment_file(
        path, columns, lambda t: known.get(t.strip().lower()), settings.payments.date_format
    )
    problems = list(parsed.problems)
    new_rows: list[PaymentRow] = []
    unchanged = 0
    for row in parsed.rows:
        stored = existing.get(row.reference)
        if stored is None:
            new_rows.append(row)
        elif stored == _digest(row):
            unchanged += 1
        else:
            problems.append(
                RowProblem(
                    path.name,
                    row.row,
                    "reference",
                    f"{row.reference!r} was imported before with different content",
                    row.values,
                )
            )
    problems.sort(key=lambda p: (p.row, p.field))
    if problems and not skip_bad_rows:
        raise InputError(
            f"{path.name}: {len(problems)} problem(s), nothing imported "
            "(fix them, or use --skip-bad-rows)",
            tuple(str(p) for p in problems),
        )
    rejects = _write_rejects(path, problems) if problems and not dry_run else None
    rows_read = len(parsed.rows) + len({p.row for p in parsed.problems})
    result = ImportResult(
        rows_read, len(new_rows), unchanged, len({p.row for p in problems}), rejects, dry_run
    )
    if dry_run:
        return result
    with recorded_run(sessions, "payments_import", "manual", {"file": str(path)}) as run:
        with sessions.begin() as session:
            batch = PaymentImport(
                file_name=str(path),
                file_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                imported_at=datetime.now(UTC),
                rows_read=rows_read,
                rows_imported=len(new_rows),
                rows_unchanged=unchanged,
                rows_rejected=result.rejected,
                run_id=run.run_id,
            )
            session.add(batch)
            session.flush()
            for row in new_rows:
                session.add(
                    Payment(
                        reference=row.reference,
                        customer_id=row.customer_id,
                        payment_date=row.payment_date,
                        amount=row.amount,
                        currency=row.currency,
                        invoice_id=row.invoice_id,
                        content_hash=_digest(row),
                        import_id=batch.id,
                        source_row=row.row,
                    )
                )
        run.count("payments", "imported", len(new_rows))
        run.count("payments", "unchanged", unchanged)
        run.count("payments", "rejected", result.rejected)
    return result


def count_payments(sessions: sessionmaker[Session]) -> int:
    """How many payments are stored."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Payment)) or 0)
