"""The partner's own data and pcsync's records: payments, reconciliation, collections, audit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sync.db.models.base import CURRENCY, ID, Base

__all__ = [
    "Action",
    "Approval",
    "AuditEntry",
    "CollectionFlag",
    "CollectionHold",
    "CustomerBalance",
    "Finding",
    "Notice",
    "Payment",
    "PaymentImport",
    "ReconciliationRun",
]

# --- partner's own data ----------------------------------------------------------


class PaymentImport(Base):
    """One payment file imported (or dry-run) by a user."""

    __tablename__ = "payment_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    file_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]
    rows_read: Mapped[int]
    rows_imported: Mapped[int]
    rows_unchanged: Mapped[int]
    rows_rejected: Mapped[int]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class Payment(Base):
    """A payment a customer made to the partner; the reference makes it unique."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    payment_date: Mapped[date]
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CURRENCY)
    invoice_id: Mapped[str | None] = mapped_column(ID)
    content_hash: Mapped[str] = mapped_column(String(64))
    import_id: Mapped[int] = mapped_column(ForeignKey("payment_imports.id"))
    source_row: Mapped[int]
    # A voided payment stays (its reference stays taken) but no longer counts anywhere.
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(255))
    void_reason: Mapped[str | None] = mapped_column(Text)


# --- reconciliation ---------------------------------------------------------------


class ReconciliationRun(Base):
    """One reconciliation as of a date; ``document`` is the ``reconcile --json`` result."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    as_of: Mapped[date] = mapped_column(index=True)
    created_at: Mapped[datetime]
    input_digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]


class Finding(Base):
    """A discrepancy found in Microsoft's bill (``kind`` as in the product's JSON)."""

    __tablename__ = "reconciliation_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str | None] = mapped_column(ID)
    subscription_id: Mapped[str | None] = mapped_column(ID)
    invoice_id: Mapped[str | None] = mapped_column(ID)
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(CURRENCY)
    detail: Mapped[str] = mapped_column(Text)


class CustomerBalance(Base):
    """A customer's position in one currency as of the reconciliation's date."""

    __tablename__ = "customer_balances"
    __table_args__ = (UniqueConstraint("reconciliation_id", "customer_id", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE")
    )
    customer_id: Mapped[str] = mapped_column(ID)
    currency: Mapped[str] = mapped_column(CURRENCY)
    microsoft_cost: Mapped[Decimal]
    charged: Mapped[Decimal]
    paid: Mapped[Decimal]
    balance: Mapped[Decimal]
    overdue_amount: Mapped[Decimal]
    days_overdue: Mapped[int]
    aging_current: Mapped[Decimal]
    aging_1_30: Mapped[Decimal]
    aging_31_60: Mapped[Decimal]
    aging_61_90: Mapped[Decimal]
    aging_over_90: Mapped[Decimal]
    owed_to_microsoft: Mapped[Decimal]


# --- collections ------------------------------------------------------------------


class CollectionFlag(Base):
    """A customer's collections stage over time: entered at, left at (null while current)."""

    __tablename__ = "collection_flags"
    __table_args__ = (Index("ix_collection_flags_customer", "customer_id", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID)
    currency: Mapped[str] = mapped_column(CURRENCY)
    action: Mapped[str] = mapped_column(String(16))  # none | follow_up | suspend | reactivate
    stage: Mapped[str | None] = mapped_column(String(64))
    overdue_amount: Mapped[Decimal]
    days_overdue: Mapped[int]
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    as_of: Mapped[date]
    entered_at: Mapped[datetime]
    left_at: Mapped[datetime | None]


class Approval(Base):
    """An admin's approval to suspend a customer under a given plan."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("collection_flags.id"))
    approved_by: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # What the approver saw, per currency: {"USD": {"stage": "suspend", "paid": "120.00"}};
    # a payment or a stage change since then voids the approval.
    basis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class Action(Base):
    """One attempt to change a subscription in Partner Center (suspend / reactivate)."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"))
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    subscription_id: Mapped[str] = mapped_column(ID, index=True)
    action: Mapped[str] = mapped_column(String(16))  # suspend | reactivate
    status_before: Mapped[str | None] = mapped_column(String(16))
    status_after: Mapped[str | None] = mapped_column(String(16))
    # pending (written before the request) → succeeded | unchanged (already so) | failed
    result: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    ms_request_id: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime]


class CollectionHold(Base):
    """A pause in a customer's collections (dispute, promise to pay): no stage beyond none."""

    __tablename__ = "collection_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    until: Mapped[date]  # collections resume on this date
    reason: Mapped[str] = mapped_column(Text)
    held_by: Mapped[str] = mapped_column(String(255))
    held_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(255))


class Notice(Base):
    """A follow-up message sent (or written as .eml) for a customer and stage; sent once."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("customer_id", "currency", "stage", "flag_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID)
    currency: Mapped[str] = mapped_column(CURRENCY)
    stage: Mapped[str] = mapped_column(String(64))
    flag_id: Mapped[int] = mapped_column(ForeignKey("collection_flags.id"))
    channel: Mapped[str] = mapped_column(String(16))  # smtp | eml
    recipient: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime]


class AuditEntry(Base):
    """Append-only record of every run and every action, with who, when and what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(ID, index=True)
    subscription_id: Mapped[str | None] = mapped_column(ID)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The hash chain (sync/audit.py): position from 1, and sha256 of this entry + the previous.
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    hash: Mapped[str] = mapped_column(String(64))
