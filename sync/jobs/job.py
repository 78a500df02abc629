"""What every step of a sync shares: its options, collaborators, errors and helpers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter
from connectors.partner_center.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RecordError,
)
from reconciliation.errors import ConfigError, PcsyncError
from sync.completeness import SYNC_RESOURCES, Completeness, Unit, quarantine
from sync.runtime.runs import RunRecorder, RunStatus, Trigger

__all__ = ["FATAL", "RESOURCES", "StopRequested", "SyncIncompleteError", "SyncOptions"]

log = logging.getLogger("sync.jobs")

RESOURCES = SYNC_RESOURCES
T = TypeVar("T")

# Partner Center's documented answers for a customer the partner no longer has a
# relationship with: 403 20002 "The partner id {0} has no commerce relationship with the
# customer id {1}" (learn.microsoft.com, Partner Center REST error codes) and 900159,
# the same on the newer services ("Reactivate an Azure subscription" lists it). The
# customer is skipped, not the run failed.
RELATIONSHIP_ENDED_CODES = frozenset({"20002", "900159"})
# Errors no other unit could escape: stop the run (wrong credentials, missing rights).
FATAL = (AuthenticationError, ConfigError, PermissionDeniedError)
# Refusals (403) of this many customers out of all, or of every customer, are not one
# customer's problem but the app's: it lacks its Partner Center role.
REFUSED_SHARE = Decimal("0.5")
REFUSED_MINIMUM = 3


class SyncIncompleteError(PcsyncError):
    """Some units could not be synced this time (listed); the next run retries them."""

    run_status = RunStatus.PARTIAL


class StopRequested(PcsyncError):
    """A stop was asked for (SIGTERM); the run ended after its last finished unit."""


@dataclass
class SyncOptions:
    """What one sync run should do."""

    only: tuple[str, ...] = RESOURCES
    full: bool = False
    trigger: Trigger = "manual"
    wait: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[str, int], None] | None = None  # (invoice id, lines read since)
    # How many invoice documents this run reads the lines of; then one call per one read.
    on_invoices: Callable[[int], None] | None = None
    on_invoice_done: Callable[[], None] | None = None
    today: date | None = None  # which month is "previous" for unbilled lines; default UTC today


@dataclass(frozen=True)
class _Job:
    """One sync run's collaborators, handed to each of its steps."""

    pc: PartnerCenter
    sessions: sessionmaker[Session]
    run: RunRecorder
    options: SyncOptions
    proof: Completeness
    # Invoice id → the checked difference between Microsoft's total and its lines.
    accepted_differences: Mapping[str, Decimal] = field(default_factory=dict)
    # Currencies Microsoft bills the partner in, beyond those of its invoices.
    billing_currencies: tuple[str, ...] = ()

    def keep_aside(self, unit: Unit, key: str, errors: list[RecordError]) -> None:
        """Quarantine unreadable records of a unit (after its own transaction)."""
        quarantine(self.sessions, self.run.run_id, self.proof, unit, key, errors)


def _interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    # A stop request cuts a backoff or poll wait short instead of waiting it out.
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


def _now() -> datetime:
    return datetime.now(UTC)


def _watch(items: Iterable[T], options: SyncOptions, label: str) -> Iterator[T]:
    """Yield items, reporting progress and stopping between batches when asked."""
    n = 0
    for n, item in enumerate(items, start=1):
        if n % 5000 == 0:
            if options.stop.is_set():
                raise StopRequested(f"stopped while reading {label}; nothing of it was kept")
            if options.on_progress:
                options.on_progress(label, 5000)
        yield item
    if options.on_progress and n % 5000:
        options.on_progress(label, n % 5000)  # the last ones, so the counts add up
