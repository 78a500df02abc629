"""Save connector records into the database: upserts on natural keys, re-runs change nothing.

Every stored record carries a content hash of its raw JSON (canonical: sorted
keys, exact decimals), so an unchanged record is recognised without comparing
columns. An invoice's lines are stored by ``sync.lines``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.partner_center import Customer, Invoice, Subscription
from sync.db.models import Customer as CustomerRow
from sync.db.models import Invoice as InvoiceRow
from sync.db.models import Subscription as SubscriptionRow
from sync.db.models import SubscriptionStatusChange, SyncCheckpoint
from sync.runtime.runs import RunRecorder

__all__ = [
    "canonical_json",
    "content_hash",
    "json_ready",
    "mark_checkpoint",
    "mark_listing",
    "upsert_customers",
    "upsert_invoices",
    "upsert_subscriptions",
]


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def json_ready(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The raw record with exact decimals as strings, ready for a JSON column.

    A NUL character (which PostgreSQL's text and JSONB cannot hold) becomes U+FFFD.
    """
    text = json.dumps(raw, default=_default)
    result: dict[str, Any] = json.loads(text)
    return _without_nul(result) if "\\u0000" in text else result


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _without_nul(item) for key, item in value.items()}
    return value


def _storable(text: str | None) -> str | None:
    """Text as sent, but for NUL, which PostgreSQL refuses: it becomes U+FFFD."""
    return None if text is None else text.replace("\x00", "\ufffd")


def canonical_json(raw: Mapping[str, Any]) -> str:
    """The record as canonical JSON: sorted keys, no spaces, decimals exactly as received."""
    return json.dumps(raw, default=_default, sort_keys=True, separators=(",", ":"))


def content_hash(raw: Mapping[str, Any]) -> str:
    """A stable hash of a raw record: key order does not matter."""
    return hashlib.sha256(canonical_json(raw).encode()).hexdigest()


def _save(
    session: Session,
    model: type[CustomerRow] | type[InvoiceRow],
    key: str,
    values: dict[str, Any],
    known: dict[str, str],
    now: datetime,
    run: RunRecorder,
    resource: str,
) -> None:
    """Insert, update or leave one mirrored record, by its content hash."""
    run.count(resource, "fetched")
    if key not in known:
        session.add(model(id=key, first_seen_at=now, synced_at=now, **values))
        run.count(resource, "inserted")
    elif known[key] != values["content_hash"]:
        row = session.get_one(model, key)
        for name, value in {**values, "synced_at": now}.items():
            setattr(row, name, value)
        run.count(resource, "updated")
    else:
        run.count(resource, "unchanged")


def upsert_customers(
    session: Session, customers: Iterable[Customer], now: datetime, run: RunRecorder
) -> list[str]:
    """Insert new customers, update changed ones; return every id seen."""
    known = dict(session.execute(select(CustomerRow.id, CustomerRow.content_hash)).all())
    seen = []
    for customer in customers:
        seen.append(customer.id)
        values = {
            "name": _storable(customer.name),
            "domain": _storable(customer.domain),
            "relationship": _storable(customer.relationship),
            "raw": json_ready(customer.raw),
            "content_hash": content_hash(customer.raw),
        }
        _save(session, CustomerRow, customer.id, values, known, now, run, "customers")
    return seen


def mark_listing(
    session: Session, listed: set[str], now: datetime, run: RunRecorder, *, complete: bool
) -> None:
    """Every stored customer the listing named is listed again; when the listing was
    ``complete``, every one it left out is delisted (since the first listing without it)."""
    stored = session.execute(select(CustomerRow.id, CustomerRow.delisted_at)).all()
    for key, delisted_at in stored:
        if key in listed and delisted_at is not None:
            session.get_one(CustomerRow, key).delisted_at = None
            run.count("customers", "relisted")
        elif key not in listed and delisted_at is None and complete:
            session.get_one(CustomerRow, key).delisted_at = now
            run.count("customers", "delisted")


def upsert_subscriptions(
    session: Session,
    customer_id: str,
    subscriptions: Iterable[Subscription],
    now: datetime,
    run: RunRecorder,
    *,
    complete: bool = False,
) -> None:
    """Refresh one customer's subscriptions; every status or auto-renew change goes into
    the history.

    Every subscription given is listed (again). When ``complete`` — ``subscriptions``
    is the customer's whole listing, read without error — every stored one it left
    out is delisted (since the first listing without it); an empty listing too.
    """
    rows = {
        row.id: row
        for row in session.scalars(
            select(SubscriptionRow).where(SubscriptionRow.customer_id == customer_id)
        )
    }
    listed: set[str] = set()
    for sub in subscriptions:
        run.count("subscriptions", "fetched")
        listed.add(sub.id)
        digest = content_hash(sub.raw)
        row = rows.get(sub.id)
        if row is not None and row.delisted_at is not None:
            row.delisted_at = None
            run.count("subscriptions", "relisted")
        if row is not None and row.content_hash == digest:
            run.count("subscriptions", "unchanged")
            continue
        old_status = row.status if row is not None else None
        old_renew = row.auto_renew if row is not None else None
        values = {
            "customer_id": customer_id,
            "offer_id": sub.offer_id,
            "offer_name": sub.offer_name,
            "friendly_name": sub.friendly_name,
            "product_type": sub.product_type,
            "quantity": sub.quantity,
            "unit_type": sub.unit_type,
            "billing_type": sub.billing_type,
            "billing_cycle": sub.billing_cycle,
            "term_duration": sub.term_duration,
            "status": sub.status.value,
            "suspension_reasons": list(sub.suspension_reasons),
            "auto_renew": sub.auto_renew,
            "effective_start_date": sub.effective_start_date,
            "commitment_end_date": sub.commitment_end_date,
            "etag": sub.etag,
            "raw": json_ready(sub.raw),
            "content_hash": digest,
            "synced_at": now,
        }
        if row is None:
            session.add(SubscriptionRow(id=sub.id, first_seen_at=now, **values))
            run.count("subscriptions", "inserted")
        else:
            for key, value in values.items():
                setattr(row, key, value)
            run.count("subscriptions", "updated")
        # Auto-renew changes too: whose an auto-renew that is off is depends on them.
        if old_status != sub.status.value or (row is not None and old_renew != sub.auto_renew):
            session.add(
                SubscriptionStatusChange(
                    subscription_id=sub.id,
                    customer_id=customer_id,
                    old_status=old_status,
                    new_status=sub.status.value,
                    old_auto_renew=old_renew,
                    new_auto_renew=sub.auto_renew,
                    observed_at=now,
                    run_id=run.run_id,
                )
            )
    if complete:
        _delist_unlisted(rows.values(), listed, now, run)


def _delist_unlisted(
    rows: Iterable[SubscriptionRow], listed: set[str], now: datetime, run: RunRecorder
) -> None:
    """Mark the stored subscriptions a complete listing left out; status kept as last seen."""
    for row in rows:
        if row.id not in listed and row.delisted_at is None:
            row.delisted_at = now
            run.count("subscriptions", "delisted")


def upsert_invoices(
    session: Session, invoices: Iterable[Invoice], now: datetime, run: RunRecorder
) -> list[Invoice]:
    """Insert new invoices and amendments, update changed ones (paid amounts change).

    Returns every document listed — invoices and their amendments, once each, in
    the order listed — each a unit whose lines the sync fetches.
    """
    known = dict(session.execute(select(InvoiceRow.id, InvoiceRow.content_hash)).all())
    seen: dict[str, Invoice] = {}
    for listed in invoices:
        for document in listed.documents:
            if document.id in seen:
                continue  # an amendment Microsoft also listed on its own
            seen[document.id] = document
            values = {
                "invoice_date": document.invoice_date,
                "billing_period_start": document.billing_period_start,
                "billing_period_end": document.billing_period_end,
                "total_charges": document.total_charges,
                "paid_amount": document.paid_amount,
                "currency": document.currency,
                "invoice_type": document.invoice_type,
                "document_type": document.document_type,
                "amends_invoice_id": document.amends,
                "raw": json_ready(document.raw),
                "content_hash": content_hash(document.raw),
            }
            _save(session, InvoiceRow, document.id, values, known, now, run, "invoices")
    return list(seen.values())


def mark_checkpoint(
    session: Session,
    resource: str,
    key: str,
    state: dict[str, Any],
    *,
    complete: bool,
    now: datetime,
    run_id: int,
) -> None:
    """Record where a piece of sync work stands."""
    row = session.get(SyncCheckpoint, (resource, key))
    if row is None:
        session.add(
            SyncCheckpoint(
                resource=resource,
                key=key,
                state=state,
                complete=complete,
                run_id=run_id,
                updated_at=now,
            )
        )
    else:
        row.state, row.complete, row.run_id, row.updated_at = state, complete, run_id, now
