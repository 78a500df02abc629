"""What a report is built from, typed: a stored reconciliation and what the report adds to it.

``pcsync report`` builds a :class:`ReportData` from typed parts (the stored
reconciliation read once by ``Reconciled.from_document``, the collections plan's
flags, the changes made at Microsoft, the margin rows); the tables and the HTML
page read only these typed rows. :meth:`ReportData.as_json` is the report's JSON
file and :meth:`ReportData.from_document` reads one back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from reconciliation.document import Reconciled
from reconciliation.money import D, round_money
from reconciliation.policy import Flag

__all__ = ["Change", "ReportData", "flag_from_json"]


@dataclass(frozen=True, slots=True)
class Change:
    """A change pcsync made (or tried) at Microsoft: a suspension or a reactivation."""

    requested_at: datetime
    requested_by: str
    customer_id: str
    customer_name: str
    subscription_id: str
    action: str
    result: str
    status_before: str | None
    status_after: str | None
    ms_request_id: str | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        """The change as in the report's JSON file."""
        return {
            "requested_at": self.when,
            "requested_by": self.requested_by,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "subscription_id": self.subscription_id,
            "action": self.action,
            "result": self.result,
            "status_before": self.status_before,
            "status_after": self.status_after,
            "ms_request_id": self.ms_request_id,
            "error": self.error,
        }

    @property
    def when(self) -> str:
        """When it was requested, as the reports write it (UTC, to the second)."""
        return self.requested_at.isoformat(timespec="seconds")

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Change:
        """A change read from the report's JSON file (a field it lacks reads as empty)."""
        return cls(
            requested_at=datetime.fromisoformat(row["requested_at"]),
            requested_by=row.get("requested_by") or "",
            customer_id=row.get("customer_id") or "",
            customer_name=row.get("customer_name") or "",
            subscription_id=row.get("subscription_id") or "",
            action=row.get("action") or "",
            result=row.get("result") or "",
            status_before=row.get("status_before"),
            status_after=row.get("status_after"),
            ms_request_id=row.get("ms_request_id"),
            error=row.get("error"),
        )


def flag_from_json(row: Mapping[str, Any]) -> Flag:
    """A flag as ``pcsync collections plan --json`` writes it, read back."""
    return Flag(
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        currency=row["currency"],
        action=row["action"],
        stage=row["stage"],
        overdue_amount=D(row["overdue_amount"]),
        days_overdue=row["days_overdue"],
        reasons=tuple(row["reasons"]),
    )


_MARGIN_AMOUNTS = ("cost", "charge", "margin", "margin_percent")


@dataclass(frozen=True)
class ReportData:
    """A stored reconciliation and what the report shows beside it.

    ``flags`` is None when the collections plan was not run for the report.
    ``products`` maps a subscription id to its product, ``contacts`` a customer id to
    the address of its latest notice, ``approvals`` a customer id to who approved its
    suspension; ``margin`` holds the Margin table's rows (exact Decimals).
    """

    reconciled: Reconciled
    flags: Sequence[Flag] | None = None
    changes: Sequence[Change] = ()
    completeness: Mapping[str, Any] | None = None
    products: Mapping[str, str] | None = None
    contacts: Mapping[str, str] | None = None
    approvals: Mapping[str, str] | None = None
    margin: Sequence[Mapping[str, Any]] = ()

    def overdue(self, flag: Flag) -> Decimal:
        """A flag's overdue amount as the reports show it: rounded to its currency."""
        return round_money(flag.overdue_amount, flag.currency)

    def as_json(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The report's JSON file: the stored ``document`` as it was, and what the report adds."""
        return {
            **document,
            "flags": None if self.flags is None else [flag.as_json() for flag in self.flags],
            "actions": [change.as_json() for change in self.changes],
            "completeness": self.completeness,
            "subscriptions": self.products,
            "contacts": self.contacts,
            "approvals": self.approvals,
            "margin": [
                {k: v if isinstance(v, int | type(None)) else str(v) for k, v in row.items()}
                for row in self.margin
            ],
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ReportData:
        """A report's JSON file, or a bare reconciliation document, read back."""
        flags = document.get("flags")
        return cls(
            reconciled=Reconciled.from_document(document),
            flags=None if flags is None else [flag_from_json(f) for f in flags],
            changes=[Change.from_json(a) for a in document.get("actions") or []],
            completeness=document.get("completeness"),
            products=document.get("subscriptions"),
            contacts=document.get("contacts"),
            approvals=document.get("approvals"),
            margin=[
                {
                    **row,
                    **{k: D(row[k]) for k in _MARGIN_AMOUNTS if row.get(k) is not None},
                }
                for row in document.get("margin") or []
            ],
        )
