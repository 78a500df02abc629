"""Sync jobs: Partner Center → database. The CLI and the scheduler call exactly these.

One sync run does, in order, whichever of ``customers``, ``subscriptions``,
``invoices`` and ``lineitems`` were asked for. Each unit of work commits on its
own (all customers; one customer's subscriptions; all invoices; one invoice's or
amendment's lines of one provider; one currency's unbilled lines of one period),
so a run killed at any point keeps what was finished and the next run picks up
the rest. A unit that fails — Microsoft refuses it, or one of its records cannot
be read (kept in quarantine) — fails alone: the run goes on, records what it
lacks (``sync/completeness.py``) and ends ``partial``. Subscriptions are asked of
the customers Microsoft lists: a complete customer listing marks the stored ones
it left out delisted (the partner relationship ended), whose stored subscriptions
are kept; a 404 for a listed customer's subscriptions is a missing unit. A customer's
subscription listing read whole marks the stored subscriptions it left out delisted
(moved to another partner, purged), an empty one too. Invoices whose lines are
complete are not fetched again unless ``full``; the invoice list, with its
amendments, is read every run, so a credit note issued later is fetched; the
unbilled lines are refreshed each run.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.partner_center import PartnerCenter
from reconciliation.errors import ConfigError
from sync.completeness import Completeness
from sync.config import Settings
from sync.jobs.job import (
    RESOURCES,
    StopRequested,
    SyncIncompleteError,
    SyncOptions,
    _interruptible_sleep,
    _Job,
)
from sync.jobs.lines import _invoiced as _invoiced
from sync.jobs.lines import _sync_lineitems, _sync_unbilled
from sync.jobs.mirror import _sync_customers, _sync_invoices, _sync_subscriptions
from sync.partner import connect
from sync.runtime.lock import run_lock
from sync.runtime.runs import recorded_run, settle_abandoned

__all__ = ["RESOURCES", "StopRequested", "SyncIncompleteError", "SyncOptions", "run_sync"]


def run_sync(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    options: SyncOptions,
    *,
    partner_center: PartnerCenter | None = None,
) -> int:
    """One sync run under the database's lock; returns the run id.

    Raises SyncIncompleteError (after recording the run as ``partial``, with what
    is missing) when some units could not be stored; what was stored is kept.
    """
    unknown = [name for name in options.only if name not in RESOURCES]
    if unknown:
        raise ConfigError(f"--only: unknown resource {unknown[0]!r}; use {', '.join(RESOURCES)}")
    with run_lock(engine, wait=options.wait):
        settle_abandoned(sessions, "sync")  # we hold the lock: no other sync is running
        params = {"only": list(options.only), "full": options.full}
        with recorded_run(sessions, "sync", options.trigger, params) as run:
            pc = partner_center or connect(
                settings.partner_center,
                correlation_id=str(uuid.uuid4()),
                sleep=_interruptible_sleep(options.stop),
            )
            proof = Completeness()
            run.completeness = proof
            try:
                billing = settings.billing
                _run(
                    _Job(
                        pc,
                        sessions,
                        run,
                        options,
                        proof,
                        billing.accepted_differences,
                        billing.currencies,
                    )
                )
            finally:
                run.requests = pc.http.stats.requests
                run.throttled = pc.http.stats.throttled
            if not proof.complete:
                raise SyncIncompleteError(proof.summary())
            return run.run_id


def _run(job: _Job) -> None:
    if "customers" in job.options.only:
        _sync_customers(job)
    if "subscriptions" in job.options.only:
        _sync_subscriptions(job)
    if "invoices" not in job.options.only and "lineitems" not in job.options.only:
        return
    documents = _sync_invoices(job)
    if documents is not None and "lineitems" in job.options.only:
        _sync_lineitems(job, documents)
        _sync_unbilled(job, documents)
