"""The mirror steps of a sync: customers, subscriptions, the invoice list."""

from __future__ import annotations

from sqlalchemy import func, select

from connectors.partner_center import Invoice
from connectors.partner_center.errors import (
    ApiError,
    ConnectorError,
    NotFoundError,
    PermissionDeniedError,
    RecordError,
)
from sync.check import GRANT_PARTNER_CENTER_ROLE
from sync.completeness import Completeness, Unit
from sync.db.models import Customer as CustomerRow
from sync.jobs.job import (
    FATAL,
    REFUSED_MINIMUM,
    REFUSED_SHARE,
    RELATIONSHIP_ENDED_CODES,
    StopRequested,
    _Job,
    _now,
    log,
)
from sync.runtime import failpoints
from sync.store import (
    mark_listing,
    upsert_customers,
    upsert_invoices,
    upsert_subscriptions,
)

__all__: list[str] = []


def _sync_customers(job: _Job) -> None:
    bad: list[RecordError] = []
    with job.sessions.begin() as session:
        now = _now()
        known = session.scalar(
            select(func.count()).select_from(CustomerRow).where(CustomerRow.delisted_at.is_(None))
        )
        listed = upsert_customers(session, job.pc.customers(on_bad=bad.append), now, job.run)
        # An empty listing where customers were listed says more of the sign-in (another
        # tenant, a lost role) than of every relationship ending at once: delist nobody.
        emptied = not listed and not bad and bool(known)
        # A customer Microsoft no longer lists (the partner relationship ended) is delisted;
        # not when a record was unreadable: its id, which may be any stored one, is unknown.
        mark_listing(session, set(listed), now, job.run, complete=not bad and not emptied)
    if emptied:
        job.proof.lacking(
            Unit.CUSTOMERS,
            "list",
            f"Microsoft listed no customer where {known} were listed before: nobody was "
            "delisted; check that the app signs in to the partner's own tenant and holds its "
            "Partner Center role, then run the sync again",
        )
    for error in bad:
        job.proof.lacking(Unit.CUSTOMERS, "list", f"a customer record was unreadable: {error}")
    job.keep_aside(Unit.CUSTOMERS, "list", bad)


def _relationship_ended(exc: ApiError) -> bool:
    return exc.status == 403 and str(exc.code) in RELATIONSHIP_ENDED_CODES


def _sync_subscriptions(job: _Job) -> None:
    with job.sessions() as session:
        stored = session.execute(
            select(CustomerRow.id, CustomerRow.delisted_at).order_by(CustomerRow.id)
        ).all()
    # Only customers Microsoft lists: a delisted one's subscriptions stay as last stored.
    customer_ids = [key for key, delisted_at in stored if delisted_at is None]
    if len(customer_ids) < len(stored):
        job.run.count("subscriptions", "customers_skipped", len(stored) - len(customer_ids))
    refused: list[tuple[str, ApiError]] = []
    for customer_id in customer_ids:
        if job.options.stop.is_set():
            raise StopRequested("stopped between customers' subscriptions")
        try:
            subscriptions = list(job.pc.subscriptions(customer_id))
        except FATAL:
            raise
        except NotFoundError as exc:
            # Not a customer gone (those are delisted, not asked): its subscriptions are missing.
            job.proof.lacking(
                Unit.SUBSCRIPTIONS,
                customer_id,
                f"Microsoft lists this customer but answered 404 for its subscriptions ({exc}): "
                "the stored ones may be stale; run the sync again",
            )
            continue
        except ApiError as exc:
            if _relationship_ended(exc):
                log.warning("customer %s: relationship ended (%s); skipped", customer_id, exc.code)
                job.run.count("subscriptions", "customers_skipped")
            elif exc.status == 403:
                refused.append((customer_id, exc))
            else:
                job.proof.lacking(Unit.SUBSCRIPTIONS, customer_id, str(exc))
            continue
        except RecordError as exc:
            job.proof.lacking(Unit.SUBSCRIPTIONS, customer_id, f"unreadable record: {exc}")
            job.keep_aside(Unit.SUBSCRIPTIONS, customer_id, [exc])
            continue
        except ConnectorError as exc:
            job.proof.lacking(Unit.SUBSCRIPTIONS, customer_id, str(exc))
            continue
        failpoints.reached("subscriptions.read")  # read from Microsoft, not yet stored
        # Read whole (one unpaged collection, every record readable): a stored subscription
        # it leaves out was moved to another partner or purged, and is delisted. An empty
        # listing delists them all: Microsoft lists this customer (the customer listing's
        # guard has already refused a sign-in to another tenant), and a customer whose
        # subscriptions all moved away is listed with none; a refusal or 404 lands above.
        with job.sessions.begin() as session:
            upsert_subscriptions(
                session, customer_id, subscriptions, _now(), job.run, complete=True
            )
    _judge_refusals(refused, len(customer_ids), job.proof)


def _judge_refusals(
    refused: list[tuple[str, ApiError]], customers: int, proof: Completeness
) -> None:
    """A few refused customers are missing units; most or all of them, the app's rights."""
    if not refused:
        return
    if len(refused) == customers or (
        customers >= REFUSED_MINIMUM and len(refused) > customers * REFUSED_SHARE
    ):
        raise PermissionDeniedError(
            f"Partner Center refused the subscriptions of {len(refused)} of {customers} "
            f"customer(s) (403, e.g. {refused[0][1]}): the app lacks its Partner Center "
            f"rights; {GRANT_PARTNER_CENTER_ROLE}, then run the sync again"
        )
    for customer_id, exc in refused:
        proof.lacking(Unit.SUBSCRIPTIONS, customer_id, f"refused (403): {exc}")


def _sync_invoices(job: _Job) -> list[Invoice] | None:
    """Store the invoice list with its amendments; every document, or None if unread."""
    bad: list[RecordError] = []
    try:
        with job.sessions.begin() as session:
            documents = upsert_invoices(
                session, job.pc.invoices(on_bad=bad.append), _now(), job.run
            )
    except FATAL:
        raise
    except ConnectorError as exc:
        if isinstance(exc, ApiError) and exc.status == 403:
            raise PermissionDeniedError(
                f"Partner Center refused the invoice list ({exc}): "
                f"{GRANT_PARTNER_CENTER_ROLE}, then run the sync again"
            ) from exc
        job.proof.lacking(Unit.INVOICES, "list", f"the invoice list could not be read: {exc}")
        return None
    for error in bad:
        job.proof.lacking(Unit.INVOICES, "list", f"an invoice record was unreadable: {error}")
    job.keep_aside(Unit.INVOICES, "list", bad)
    return documents
