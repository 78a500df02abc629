"""``pcsync reconcile``: run the pure rules on the inputs; store the run, findings, balances."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.aging import age
from reconciliation.money import ZERO
from reconciliation.result import ReconciliationResult, reconcile
from sync.config import Settings
from sync.db import models
from sync.db.engine import EncodedJSON
from sync.reconcile.inputs import check_override_customers, load_inputs
from sync.runtime.gcpause import cycle_collection_paused
from sync.runtime.runs import Trigger, recorded_run

__all__ = ["run_reconciliation", "to_json"]


def to_json(document: dict[str, Any]) -> str:
    """The document as stable JSON text (same data, same bytes)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def _encoded(document: dict[str, Any]) -> EncodedJSON:
    # Compact, so json's C encoder does it (indent= takes the pure-Python one).
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return EncodedJSON(text)


def run_reconciliation(
    settings: Settings, sessions: sessionmaker[Session], as_of: date, trigger: Trigger = "manual"
) -> ReconciliationResult:
    """Reconcile as of a date and store the run, its findings and the customer balances."""
    with sessions() as session:
        check_override_customers(session, settings)  # before the run: a refusal records nothing
    with (
        recorded_run(sessions, "reconcile", trigger, {"as_of": as_of.isoformat()}) as run,
        cycle_collection_paused(),
    ):
        with sessions() as session:
            result = reconcile(load_inputs(session, settings, as_of))
        encoded = _encoded(result.document)  # once: for the digest, and stored as it is
        with sessions.begin() as session:
            stored = models.ReconciliationRun(
                run_id=run.run_id,
                as_of=as_of,
                created_at=datetime.now(UTC),
                input_digest=hashlib.sha256(encoded.encode()).hexdigest(),
                document=encoded,
            )
            session.add(stored)
            session.flush()
            # Plain inserts: thousands of rows need no ORM objects.
            if result.findings:
                session.execute(
                    insert(models.Finding),
                    [
                        {
                            "reconciliation_id": stored.id,
                            "kind": f.kind,
                            "customer_id": f.customer_id,
                            "subscription_id": f.subscription_id,
                            "invoice_id": f.invoice_id,
                            "amount": f.amount,
                            "currency": f.currency,
                            "detail": f.detail,
                        }
                        for f in result.findings
                    ],
                )
            exposure = {(e.customer_id, e.currency): e for e in result.exposure}
            balances = []
            for ledger in result.ledgers:
                e = exposure.get((ledger.customer_id, ledger.currency))
                aging = age(ledger)
                balances.append(
                    {
                        "reconciliation_id": stored.id,
                        "customer_id": ledger.customer_id,
                        "currency": ledger.currency,
                        "microsoft_cost": sum((c.cost for c in ledger.charges), ZERO),
                        "charged": ledger.charged,
                        "paid": ledger.paid,
                        "balance": ledger.balance,
                        "overdue_amount": ledger.overdue_amount,
                        "days_overdue": ledger.days_overdue,
                        "aging_current": aging["current"],
                        "aging_1_30": aging["1-30"],
                        "aging_31_60": aging["31-60"],
                        "aging_61_90": aging["61-90"],
                        "aging_over_90": aging["over_90"],
                        "owed_to_microsoft": e.owed_to_microsoft if e else ZERO,
                    }
                )
            if balances:
                session.execute(insert(models.CustomerBalance), balances)
        run.count("reconcile", "customers", len(result.ledgers))
        run.count("reconcile", "findings", len(result.findings))
    return result
