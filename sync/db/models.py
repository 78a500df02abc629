"""The database schema: every table pcsync keeps, as SQLAlchemy 2 typed models.

Three groups:

* **Mirror of Partner Center** — customers, subscriptions (+ status history),
  invoices and invoice line items, each keyed by Microsoft's natural key and
  keeping the raw record as received.
* **Partner's own data** — payment imports and payments.
* **pcsync's own records** — runs and checkpoints, reconciliation runs and
  their results, collection flags, approvals, actions on subscriptions, notices
  and the append-only audit log.

Money is ``Money`` (exact, never float) beside a ``currency`` column; times are
``UTCDateTime`` (aware UTC); business dates (invoice date, payment date) are
calendar ``Date``s in UTC. Migrations under ``migrations/`` must match these
models exactly; a test checks it on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.db.types import Money, UTCDateTime

__all__ = [
    "Action",
    "Approval",
    "AuditEntry",
    "Base",
    "CollectionFlag",
    "CollectionHold",
    "Customer",
    "CustomerBalance",
    "Finding",
    "Invoice",
    "LineItem",
    "Notice",
    "Payment",
    "PaymentImport",
    "ReconciliationRun",
    "Run",
    "Subscription",
    "SubscriptionStatusChange",
    "SyncCheckpoint",
    "UnbilledLineItem",
]

# Deterministic constraint names, so migrations can alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DOCUMENT = JSON().with_variant(JSONB(), "postgresql")
ID = String(64)  # Microsoft ids are GUIDs or short codes ("G000123456")
CURRENCY = String(3)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention and shared type map."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        Decimal: Money(),
        date: Date(),
        dict[str, Any]: DOCUMENT,
        list[Any]: DOCUMENT,
    }


# --- runs ---------------------------------------------------------------------


class Run(Base):
    """One execution of a job (sync, reconcile, import, apply…), manual or scheduled."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule
    # running | succeeded | partial | failed | interrupted (abandoned: shown, never stored)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    pid: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requests: Mapped[int] = mapped_column(default=0)
    throttled: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # A sync's proof of completeness: per invoice and amendment, what was stored or why not.
    completeness: Mapped[dict[str, Any] | None]


class SyncCheckpoint(Base):
    """Where a resumable piece of sync work stands (an invoice's lines, a page token…)."""

    __tablename__ = "sync_checkpoints"

    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    updated_at: Mapped[datetime]


class QuarantinedRecord(Base):
    """A record a sync could not read: kept as received, with where it came from and why.

    Its unit (one customer's subscriptions, one invoice's lines of one provider…)
    was not stored by that run, which therefore ended ``partial``.
    """

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    unit: Mapped[str] = mapped_column(String(32))  # subscriptions | lineitems | invoices | …
    unit_key: Mapped[str] = mapped_column(String(255))  # customer id, invoice:provider, …
    source_url: Mapped[str | None] = mapped_column(Text)  # without its query's secrets
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


# --- mirror of Partner Center -------------------------------------------------


class Customer(Base):
    """A customer tenant of the partner, as listed by Partner Center."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # customer's Entra tenant id
    name: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    relationship: Mapped[str | None] = mapped_column(String(32))
    raw: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]
    synced_at: Mapped[datetime]


class Subscription(Base):
    """A customer's subscription, refreshed each sync."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    offer_id: Mapped[str | None] = mapped_column(String(128))
    offer_name: Mapped[str | None] = mapped_column(String(255))
    friendly_name: Mapped[str | None] = mapped_column(String(255))
    product_type: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit_type: Mapped[str | None] = mapped_column(String(64))
    billing_type: Mapped[str | None] = mapped_column(String(16))
    billing_cycle: Mapped[str | None] = mapped_column(String(16))
    term_duration: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    suspension_reasons: Mapped[list[Any]] = mapped_column(default=list)
    auto_renew: Mapped[bool | None]
    effective_start_date: Mapped[datetime | None]
    commitment_end_date: Mapped[datetime | None]
    etag: Mapped[str | None] = mapped_column(String(255))
    raw: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]
    synced_at: Mapped[datetime]


class SubscriptionStatusChange(Base):
    """A change seen by a sync: when did this subscription become suspended, or its
    auto-renew change (a row per sighting of a change of either; both kept)."""

    __tablename__ = "subscription_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ID, index=True)
    customer_id: Mapped[str] = mapped_column(ID)
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    old_auto_renew: Mapped[bool | None]
    new_auto_renew: Mapped[bool | None]
    observed_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class Invoice(Base):
    """A Microsoft invoice to the partner (one currency per invoice)."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # e.g. G000123456
    invoice_date: Mapped[date] = mapped_column(index=True)
    billing_period_start: Mapped[date | None]
    billing_period_end: Mapped[date | None]
    total_charges: Mapped[Decimal]
    paid_amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CURRENCY)
    invoice_type: Mapped[str | None] = mapped_column(String(32))
    document_type: Mapped[str | None] = mapped_column(String(32))
    # A credit note or adjustment note: the invoice it amends (its own lines are its own).
    amends_invoice_id: Mapped[str | None] = mapped_column(ID)
    raw: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime]
    synced_at: Mapped[datetime]


class _LineColumns:
    """Columns shared by billed and unbilled reconciliation line items."""

    provider: Mapped[str] = mapped_column(String(32))  # one_time | office | azure | …
    source: Mapped[str] = mapped_column(String(8))  # v1 | v2
    content_hash: Mapped[str] = mapped_column(String(64))
    # Microsoft may repeat an identical line; each repetition is kept once.
    occurrence: Mapped[int] = mapped_column(Integer, default=1)
    customer_id: Mapped[str | None] = mapped_column(ID)
    customer_name: Mapped[str | None] = mapped_column(String(255))
    subscription_id: Mapped[str | None] = mapped_column(ID)
    product_id: Mapped[str | None] = mapped_column(String(64))
    sku_id: Mapped[str | None] = mapped_column(String(64))
    product_name: Mapped[str | None] = mapped_column(String(255))
    charge_type: Mapped[str | None] = mapped_column(String(64))
    unit_price: Mapped[Decimal | None]
    quantity: Mapped[Decimal | None]
    billable_quantity: Mapped[Decimal | None]
    subtotal: Mapped[Decimal]
    tax_total: Mapped[Decimal]
    total_for_customer: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(CURRENCY)
    charge_start_date: Mapped[date | None]
    charge_end_date: Mapped[date | None]
    # The line as JSON text — as received for v2 export lines, canonical (sorted keys, exact
    # decimals) otherwise; its content_hash is taken of this same text.
    raw: Mapped[str] = mapped_column(Text)


class LineItem(_LineColumns, Base):
    """A billed reconciliation line of a Microsoft invoice, v1 or v2, any provider."""

    __tablename__ = "invoice_line_items"
    # Few indexes: each is maintained on every one of millions of inserts. The scope index
    # grows in insertion order (an index led by a hash took a random page per insert) and
    # holds the hash, for numbering repeats (sync/lines/repeats.py); the others serve the
    # reconciliation's search for the lines that can raise a finding (sync/reconcile.py).
    # (invoice, provider, content_hash, occurrence) is unique by construction: an invoice's
    # lines are always replaced whole, and their repeats numbered 1, 2, ….
    __table_args__ = (
        Index("ix_invoice_line_items_scope", "invoice_id", "provider", "id", "content_hash"),
        Index("ix_invoice_line_items_subscription", "subscription_id"),
        Index(
            "ix_invoice_line_items_repeats",
            "invoice_id",
            sqlite_where=text("occurrence > 1"),
            postgresql_where=text("occurrence > 1"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ID)
    # The run that wrote the line; no foreign key: PostgreSQL would check it once per line
    # (migration 0006).
    run_id: Mapped[int | None] = mapped_column(Integer)


class LineSum(Base):
    """The sums of an invoice's billed lines per provider, customer and currency.

    Written with the lines, in the same transaction, so the reconciliation reads
    thousands of sums instead of millions of lines.
    """

    __tablename__ = "invoice_line_sums"

    invoice_id: Mapped[str] = mapped_column(ID, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, primary_key=True)  # "" for lines without one
    currency: Mapped[str] = mapped_column(CURRENCY, primary_key=True)
    lines: Mapped[int] = mapped_column(Integer)
    subtotal: Mapped[Decimal]
    total_for_customer: Mapped[Decimal]


class UnbilledLineItem(_LineColumns, Base):
    """A line of the open (not yet invoiced) billing period; replaced on each sync."""

    __tablename__ = "unbilled_line_items"
    __table_args__ = (  # as for billed lines
        Index(
            "ix_unbilled_line_items_scope", "period", "currency", "provider", "id", "content_hash"
        ),
        Index(
            "ix_unbilled_line_items_repeats",
            "period",
            sqlite_where=text("occurrence > 1"),
            postgresql_where=text("occurrence > 1"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16))  # current | previous
    synced_at: Mapped[datetime]


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
