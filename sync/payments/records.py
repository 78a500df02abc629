"""Imported payments, seen and corrected: ``pcsync payments list`` and ``payments void``.

A wrong payment is never deleted: voiding marks it with who, when and why,
writes the audit log, and from then on it counts nowhere (the reconciliation
reads only payments that are not voided, and collections and reports read the
reconciliation). Its reference stays taken, so importing the same file again
does not bring it back; the corrected payment is imported under a reference of
its own. A void is all or nothing: one unknown or already voided reference and
nothing changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import InputError
from reconciliation.money import ZERO, money_text
from sync import audit
from sync.db.models import Customer, Payment, PaymentImport

__all__ = ["PaymentView", "VoidResult", "list_payments", "void_payments"]

AUDITED_REFERENCES = 100  # references listed in one audit entry; more are counted
_SHOWN = 10  # references named in an error


@dataclass(frozen=True)
class PaymentView:
    """One imported payment as ``pcsync payments list`` shows it."""

    reference: str
    customer_id: str
    customer_name: str
    payment_date: date
    amount: Decimal
    currency: str
    invoice_id: str | None
    import_run: int | None  # the run of the import that stored it
    voided_at: datetime | None
    voided_by: str | None
    void_reason: str | None

    @property
    def voided(self) -> bool:
        """True once the payment is voided: it no longer counts."""
        return self.voided_at is not None

    def as_json(self) -> dict[str, Any]:
        """The payment as in ``pcsync payments list --json`` (amount as a decimal string)."""
        return {
            "reference": self.reference,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "payment_date": self.payment_date.isoformat(),
            "amount": money_text(self.currency)(self.amount),
            "currency": self.currency,
            "invoice_id": self.invoice_id,
            "import_run": self.import_run,
            "voided": self.voided,
            "voided_at": self.voided_at.isoformat() if self.voided_at else None,
            "voided_by": self.voided_by,
            "void_reason": self.void_reason,
        }


def list_payments(
    sessions: sessionmaker[Session],
    *,
    customer_id: str | None = None,
    import_run: int | None = None,
    include_voided: bool = False,
) -> list[PaymentView]:
    """Imported payments by date and reference; voided ones only when asked for."""
    query = (
        select(Payment, Customer.name, PaymentImport.run_id)
        .join(PaymentImport, PaymentImport.id == Payment.import_id)
        .outerjoin(Customer, Customer.id == Payment.customer_id)
        .order_by(Payment.payment_date, Payment.reference)
    )
    if customer_id is not None:
        query = query.where(Payment.customer_id == customer_id)
    if import_run is not None:
        query = query.where(PaymentImport.run_id == import_run)
    if not include_voided:
        query = query.where(Payment.voided_at.is_(None))
    with sessions() as session:
        return [_view(p, name, run) for p, name, run in session.execute(query)]


def _view(p: Payment, name: str | None, run: int | None) -> PaymentView:
    return PaymentView(
        p.reference,
        p.customer_id,
        name or p.customer_id,
        p.payment_date,
        p.amount,
        p.currency,
        p.invoice_id,
        run,
        p.voided_at,
        p.voided_by,
        p.void_reason,
    )


# --- voiding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoidResult:
    """What a void did."""

    voided: int  # payments voided now
    customers: int  # customers they belonged to
    totals: dict[str, Decimal]  # currency → amount voided
    already_voided: int  # of a whole import: payments voided before, left as they were

    def text(self) -> str:
        """One line for the terminal."""
        amounts = ", ".join(
            f"{money_text(currency)(amount)} {currency}"
            for currency, amount in sorted(self.totals.items())
        )
        line = f"voided {self.voided} payment(s) of {self.customers} customer(s): {amounts}"
        if self.already_voided:
            line += f"; {self.already_voided} of the import were voided before"
        return line


def _names(references: Iterable[str]) -> str:
    listed = sorted(references)
    more = f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
    return ", ".join(listed[:_SHOWN]) + more


def _write_lock(session: Session) -> None:
    """Take the write lock before reading, so what is checked is what is voided."""
    if session.get_bind().dialect.name == "sqlite":  # changes no row
        session.execute(text("UPDATE payments SET id = id WHERE 0 = 1"))


# What a void reads of each payment (rows, not objects: an import may hold a million).
_VOID_COLUMNS = (
    Payment.id,
    Payment.reference,
    Payment.customer_id,
    Payment.currency,
    Payment.amount,
    Payment.voided_at,
    Payment.voided_by,
)


def _by_references(session: Session, references: list[str]) -> list[Any]:
    wanted = sorted(set(references))
    query = select(*_VOID_COLUMNS).where(Payment.reference.in_(wanted)).with_for_update()
    found = {p.reference: p for p in session.execute(query)}
    unknown = [r for r in wanted if r not in found]
    if unknown:
        raise InputError(
            f"unknown payment reference(s): {_names(unknown)}; nothing voided "
            "(`pcsync payments list --include-voided` shows the references)"
        )
    voided = [found[r] for r in wanted if found[r].voided_at is not None]
    if voided:
        first = voided[0]
        raise InputError(
            f"already voided: {_names(p.reference for p in voided)} (e.g. {first.reference} "
            f"by {first.voided_by} on {first.voided_at:%Y-%m-%d}); nothing voided"
        )
    return [found[r] for r in wanted]


def _by_import(session: Session, import_run: int) -> tuple[list[Any], int]:
    imports = select(PaymentImport.id).where(PaymentImport.run_id == import_run)
    if session.scalar(imports.limit(1)) is None:
        raise InputError(
            f"no payment import in run {import_run} (`pcsync payments list` shows each "
            "payment's import run, `pcsync runs` the runs)"
        )
    query = select(*_VOID_COLUMNS).where(Payment.import_id.in_(imports)).with_for_update()
    payments = list(session.execute(query))
    live = [p for p in payments if p.voided_at is None]
    if not live:
        raise InputError(
            f"every payment of import run {import_run} is already voided; nothing voided"
        )
    return live, len(payments) - len(live)


def void_payments(
    sessions: sessionmaker[Session],
    *,
    references: Iterable[str] = (),
    import_run: int | None = None,
    reason: str,
    by: str,
) -> VoidResult:
    """Void the payments named, or every payment of one import, in one transaction."""
    wanted = list(references)
    if bool(wanted) == (import_run is not None):
        raise InputError("name the payments to void: REFERENCE… or --import RUN (not both)")
    if not reason.strip():
        raise InputError("--reason must say why the payments are voided")
    now = datetime.now(UTC)
    with sessions.begin() as session:
        _write_lock(session)
        if import_run is not None:
            payments, before = _by_import(session, import_run)
        else:
            payments, before = _by_references(session, wanted), 0
        ids = [p.id for p in payments]
        for start in range(0, len(ids), 10_000):
            session.execute(
                update(Payment)
                .where(Payment.id.in_(ids[start : start + 10_000]), Payment.voided_at.is_(None))
                .values(voided_at=now, voided_by=by, void_reason=reason)
                .execution_options(synchronize_session=False)
            )
        _audit(session, payments, import_run, reason, by)
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for p in payments:
        totals[p.currency] += p.amount
    return VoidResult(len(payments), len({p.customer_id for p in payments}), dict(totals), before)


def _audit(
    session: Session, payments: list[Any], import_run: int | None, reason: str, by: str
) -> None:
    """One entry per customer and currency: the references, their count and total."""
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for p in payments:
        groups[(p.customer_id, p.currency)].append(p)
    for (customer_id, currency), own in sorted(groups.items()):
        references = sorted(p.reference for p in own)
        audit.record(
            session,
            "payments_voided",
            by,
            customer_id=customer_id,
            reason=reason,
            currency=currency,
            amount=money_text(currency)(sum((p.amount for p in own), ZERO)),
            payments=len(own),
            references=references[:AUDITED_REFERENCES],
            import_run=import_run,
        )
