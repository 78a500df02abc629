"""What a sync run proves it has: every unit stored, or exactly what is missing and why.

A unit is one piece of work that commits on its own: the customer list, one
customer's subscriptions, the invoice list, one invoice's (or amendment's) lines
of one provider, the unbilled lines of one currency and period. A run is
``succeeded`` only when no unit is missing; otherwise it ends ``partial`` with the
missing units listed in ``pcsync runs``. A record that cannot be read is kept in
the quarantine table with its payload, its source and the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import Invoice, Provider
from connectors.partner_center.errors import RecordError
from sync.db.models import QuarantinedRecord, Run
from sync.runtime.runs import RunStatus

__all__ = [
    "SYNC_RESOURCES",
    "Completeness",
    "Unit",
    "data_completeness",
    "headline",
    "quarantine",
]


# What `sync --only` names; a run of all of them is the one that can prove completeness.
SYNC_RESOURCES = ("customers", "subscriptions", "invoices", "lineitems")


class Unit(enum.StrEnum):
    """The kinds of unit a sync stores, each committed on its own."""

    CUSTOMERS = "customers"
    SUBSCRIPTIONS = "subscriptions"
    INVOICES = "invoices"
    LINEITEMS = "lineitems"
    UNBILLED = "unbilled"


@dataclass
class Completeness:
    """The proof a sync run builds as it goes; stored with the run as JSON."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    quarantined: int = 0

    @property
    def complete(self) -> bool:
        """True when nothing is missing."""
        return not self.missing

    def stored(
        self,
        document: Invoice,
        provider: Provider,
        *,
        api: str | None,
        lines: int,
        line_total: Decimal,
        earlier: bool = False,
    ) -> None:
        """A document's lines of one provider are stored (by this run, or ``earlier``)."""
        self.documents.append(
            {
                **_describe(document, provider),
                "status": "stored earlier" if earlier else "stored",
                "api": api,
                "lines": lines,
                "line_total": str(line_total),
                "microsoft_total": str(document.total_charges),
            }
        )

    def lacking(
        self,
        unit: Unit,
        key: str,
        reason: str,
        *,
        document: Invoice | None = None,
        provider: Provider | None = None,
        api: str | None = None,
    ) -> None:
        """A unit this run could not store, and why."""
        self.missing.append({"unit": unit.value, "key": key, "reason": reason})
        if document is not None and provider is not None:
            self.documents.append(
                {
                    **_describe(document, provider),
                    "status": "missing",
                    "api": api,
                    "reason": reason,
                    "microsoft_total": str(document.total_charges),
                }
            )

    def short(self, invoice_id: str, reason: str) -> None:
        """The document's stored lines do not add up to its total: each of its entries
        says so, instead of "stored"."""
        for entry in self.documents:
            if entry["invoice"] == invoice_id and entry["status"] in ("stored", "stored earlier"):
                entry["status"], entry["reason"] = "missing", reason

    def summary(self, limit: int = 3) -> str:
        """One line naming the missing units (the first few) for the run's error."""
        shown = "; ".join(f"{m['unit']} {m['key']}: {m['reason']}" for m in self.missing[:limit])
        more = f"; and {len(self.missing) - limit} more" if len(self.missing) > limit else ""
        return f"{len(self.missing)} unit(s) missing, the next run retries them: {shown}{more}"

    def as_json(self) -> dict[str, Any]:
        """The proof as stored in ``runs.completeness`` and shown by ``pcsync runs --json``."""
        return {
            "complete": self.complete,
            "missing": self.missing,
            "quarantined": self.quarantined,
            "documents": self.documents,
        }


def _describe(document: Invoice, provider: Provider) -> dict[str, Any]:
    return {
        "invoice": document.id,
        "amends": document.amends,
        "document_type": document.document_type,
        "provider": provider.value,
        "currency": document.currency,
    }


def quarantine(
    sessions: sessionmaker[Session],
    run_id: int,
    proof: Completeness,
    unit: Unit,
    key: str,
    errors: list[RecordError],
) -> None:
    """Keep unreadable records aside (in a transaction of their own) and count them.

    Called after the unit's own transaction has ended: SQLite has one writer.
    """
    if not errors:
        return
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for error in errors:
            session.add(
                QuarantinedRecord(
                    run_id=run_id,
                    unit=unit.value,
                    unit_key=key,
                    source_url=error.source,
                    reason=str(error),
                    payload=error.payload,
                    created_at=now,
                )
            )
    proof.quarantined += len(errors)


def data_completeness(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """What the reports say at the top: complete as of the last sync that had everything,
    or the units the latest sync lacks.

    ``{"complete": bool, "complete_as_of": ISO time | None, "latest_run": id | None,
    "latest_status": str | None, "missing": [ {unit, key, reason}, … ]}``
    """
    with sessions() as session:
        # Only a run that set out to fetch everything can prove everything is there: a
        # `sync --only customers` that succeeds says nothing of the invoices' lines.
        whole = [
            run
            for run in session.scalars(
                select(Run)
                .where(Run.kind == "sync", Run.status != RunStatus.RUNNING)
                .order_by(Run.id.desc())
                .limit(200)
            )
            if set((run.params or {}).get("only") or ()) >= set(SYNC_RESOURCES)
        ]
        latest = whole[0] if whole else None
        good = next((run for run in whole if run.status == RunStatus.SUCCEEDED), None)
        missing: list[dict[str, str]] = []
        if latest is not None and latest.status != RunStatus.SUCCEEDED:
            proof = latest.completeness or {}
            missing = list(proof.get("missing") or [])
            if not missing:
                missing = [{"unit": "sync", "key": str(latest.id), "reason": latest.error or ""}]
        return {
            "complete": latest is not None and latest.status == RunStatus.SUCCEEDED,
            "complete_as_of": good.finished_at.isoformat(timespec="seconds")
            if good is not None and good.finished_at is not None
            else None,
            "latest_run": latest.id if latest is not None else None,
            "latest_status": latest.status if latest is not None else None,
            "missing": missing,
        }


def headline(state: dict[str, Any]) -> str:
    """One line for a report's title: complete as of when, or how much is missing."""
    if state.get("complete"):
        return f"Microsoft's data complete as of {state['complete_as_of']} UTC"
    if state.get("latest_run") is None:
        return "no sync has run: Microsoft's data is missing"
    return (
        f"INCOMPLETE: sync run {state['latest_run']} ({state['latest_status']}) lacks "
        f"{len(state['missing'])} unit(s); see pcsync runs"
    )
