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

from sync.db.models.base import Base
from sync.db.models.lines import LineItem, LineSum, UnbilledLineItem
from sync.db.models.lines import _LineColumns as _LineColumns  # the columns both line tables share
from sync.db.models.mirror import (
    Customer,
    Invoice,
    QuarantinedRecord,
    Run,
    Subscription,
    SubscriptionStatusChange,
    SyncCheckpoint,
)
from sync.db.models.own import (
    Action,
    Approval,
    AuditEntry,
    CollectionFlag,
    CollectionHold,
    CustomerBalance,
    Finding,
    Notice,
    Payment,
    PaymentImport,
    ReconciliationRun,
)

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
    "LineSum",
    "Notice",
    "Payment",
    "PaymentImport",
    "QuarantinedRecord",
    "ReconciliationRun",
    "Run",
    "Subscription",
    "SubscriptionStatusChange",
    "SyncCheckpoint",
    "UnbilledLineItem",
]
