"""Runs and the mirror of Partner Center: customers, subscriptions, invoices."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sync.db.models.base import CURRENCY, ID, Base

__all__ = [
    "Customer",
    "Invoice",
    "QuarantinedRecord",
    "Run",
    "Subscription",
    "SubscriptionStatusChange",
    "SyncCheckpoint",
]

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
    # Since when Partner Center's customer list leaves it out (the partner relationship
    # ended): set and cleared by a sync whose listing was complete; None while listed.
    delisted_at: Mapped[datetime | None]


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
    # Since when its customer's subscription listing leaves it out (moved to another
    # partner, purged): set and cleared by a sync that read that listing completely;
    # None while listed. The row keeps the last status Microsoft gave.
    delisted_at: Mapped[datetime | None]


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
