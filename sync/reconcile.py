"""``pcsync reconcile``: load the inputs from the database, run the pure rules, store the result."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, type_coerce
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import NullType

from reconciliation.aging import age
from reconciliation.checks import (
    SEAT_CHARGES,
    InvoiceFact,
    LineFact,
    SubscriptionFact,
    latest_by_currency,
)
from reconciliation.ledger import (
    BilledLine,
    BillingTerms,
    Charge,
    Payment,
    TermsOverride,
    build_charges,
)
from reconciliation.money import ZERO
from reconciliation.result import Inputs, ReconciliationResult, reconcile
from sync.config import Settings
from sync.db import models
from sync.db.engine import EncodedJSON
from sync.gcpause import cycle_collection_paused
from sync.runs import Trigger, recorded_run

__all__ = ["customer_charges", "load_inputs", "run_reconciliation", "to_json"]


def _terms(settings: Settings) -> BillingTerms:
    billing = settings.billing
    return BillingTerms(
        markup_percent=billing.markup_percent,
        tax_percent=billing.tax_percent,
        payment_terms_days=billing.payment_terms_days,
        overrides={
            customer.lower(): TermsOverride(o.markup_percent, o.payment_terms_days, o.tax_percent)
            for customer, o in billing.overrides.items()
        },
    )


def _suspended_since(session: Session) -> dict[str, date | None]:
    """When each subscription's latest suspension was seen; None when it was the first sight.

    A sync records every status it sees change, the first sight of a subscription
    included (old status none): a subscription first seen suspended was suspended
    before pcsync knew it, on a date Partner Center does not give.
    """
    history = models.SubscriptionStatusChange
    rows = session.execute(
        select(history.subscription_id, history.old_status, history.observed_at)
        .where(history.new_status == "suspended")
        .order_by(history.observed_at, history.id)
    )
    return {
        sub_id: None if old_status is None else observed.date()
        for sub_id, old_status, observed in rows
    }


def _is_new_commerce(product_type: str | None) -> bool:
    # Partner Center's product type of new-commerce licences, e.g. "OnlineServicesNCE".
    return product_type is not None and product_type.lower().endswith("nce")


def _billed(session: Session, dates: dict[str, date], *where: Any) -> list[BilledLine]:
    """Lines summed per invoice, customer and currency, from the sums the sync keeps."""
    sums: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    rows = _plain_rows(
        session,
        [
            models.LineSum.invoice_id,
            models.LineSum.customer_id,
            models.LineSum.currency,
            models.LineSum.subtotal,
            models.LineSum.total_for_customer,
        ],
        *where,
    )
    for invoice_id, customer_id, currency, subtotal, total in rows:
        group = sums[(invoice_id, customer_id, currency)]  # summed over providers
        group[0] += _money(subtotal)
        group[1] += _money(total)
    return [
        BilledLine(invoice_id, dates[invoice_id], customer_id, currency, subtotal, total)
        for (invoice_id, customer_id, currency), (subtotal, total) in sums.items()
        if invoice_id in dates
    ]


# The columns that say what a line bills (LineFact.billed_as without the fields only the raw
# line holds): lines alike in all of them may be duplicates. The first five must all be
# there (LineFact.says_what_it_bills); the others may be null.
_SAYS_WHAT = ("subscription_id", "charge_start_date", "charge_end_date", "quantity", "unit_price")
_ALSO = ("invoice_id", "customer_id", "product_id", "sku_id", "charge_type")
# Where the raw line holds meter, usage date and reservation order (keys in any case).
_RAW_KEYS = {
    "meter_id": ("meterid", "resourceguid"),
    "usage_date": ("usagedate",),
    "reservation_order_id": ("reservationorderid",),
}


def _possible_duplicates() -> Any:
    """The ids of lines that share every billed-as column with another line of their invoice.

    The database groups the lines once by those columns (no index leads with them:
    the search reads every line's columns, the cost of finding a charge billed twice
    under fresh identifiers) and the few repeated groups are joined back to their
    lines through the subscription index.
    """
    lines = models.LineItem
    says_what = [getattr(lines, name) for name in _SAYS_WHAT]
    also = [getattr(lines, name) for name in _ALSO]
    repeated = (
        select(*says_what, *also)
        .where(
            # A function of the column, so the database reads the lines in order rather
            # than through the subscription index (a random read per line).
            func.length(lines.subscription_id) > 0,
            *(column.is_not(None) for column in says_what[1:]),
        )
        .group_by(*says_what, *also)
        .having(func.count() > 1)
        .subquery()
    )
    return select(lines.id).join(
        repeated,
        and_(
            *(column == repeated.c[column.key] for column in says_what),
            *(column.is_not_distinct_from(repeated.c[column.key]) for column in also),
        ),
    )


def _raw_fields(raw: str | None) -> dict[str, str | None]:
    """Meter, usage date and reservation order of a raw line (None where it has none)."""
    try:
        data = json.loads(raw, parse_float=Decimal) if raw else {}
    except ValueError:
        data = {}
    keyed = {str(k).lower(): v for k, v in data.items()} if isinstance(data, dict) else {}
    found: dict[str, str | None] = {}
    for field, keys in _RAW_KEYS.items():
        values = [str(keyed[k]).strip() for k in keys if keyed.get(k) not in (None, "")]
        found[field] = values[0].lower() if values else None
    if found["usage_date"]:
        found["usage_date"] = found["usage_date"][:10]  # a date, whatever time it carries
    return found


def _finding_candidates(
    session: Session, latest: list[str], suspended: list[str]
) -> list[LineFact]:
    """Only the lines that can raise a finding.

    Every line of a possible duplicate group (one grouping pass over the lines'
    columns), then, each found through an index, repeated identical lines, the
    seat charges of each currency's latest invoice, lines of suspended or unknown
    subscriptions and lines of unknown customers — the raw lines (JSON) are read
    only for the possible duplicates.
    """
    lines = models.LineItem
    unknown_customers = list(
        session.scalars(
            select(models.LineSum.customer_id)
            .distinct()
            .where(
                models.LineSum.customer_id != "",
                models.LineSum.customer_id.not_in(select(models.Customer.id)),
            )
        )
    )
    unknown_subscriptions = list(
        session.scalars(
            select(lines.subscription_id)
            .distinct()
            .where(
                lines.subscription_id.is_not(None),
                lines.subscription_id.not_in(select(models.Subscription.id)),
            )
        )
    )
    # Possible duplicates first: a line found there carries its raw fields.
    conditions = [
        lines.id.in_(_possible_duplicates()),
        lines.occurrence > 1,  # repeats of lines that do not say what they bill
        and_(
            lines.invoice_id.in_(latest),
            lines.subscription_id.is_not(None),
            func.lower(lines.charge_type).in_(sorted(SEAT_CHARGES)),
        ),
        lines.subscription_id.in_([*suspended, *unknown_subscriptions]),
    ]
    if unknown_customers:
        conditions.append(lines.customer_id.in_(unknown_customers))
    columns = [
        lines.id,
        lines.invoice_id,
        lines.customer_id,
        lines.subscription_id,
        lines.currency,
        lines.subtotal,
        lines.total_for_customer,
        lines.billable_quantity,
        lines.charge_type,
        lines.charge_start_date,
        lines.charge_end_date,
        lines.content_hash,
        lines.occurrence,
        lines.product_id,
        lines.sku_id,
        lines.quantity,
        lines.unit_price,
    ]
    found: dict[int, LineFact] = {}
    for position, condition in enumerate(conditions):  # a line may match several
        with_raw = position == 0  # the others can form no group with fields the raw holds
        for row in _plain_rows(session, [*columns, lines.raw] if with_raw else columns, condition):
            if row[0] not in found:
                found[row[0]] = _line_fact(row, _raw_fields(row[-1]) if with_raw else {})
    return [found[key] for key in sorted(found)]


def _line_fact(row: Any, raw_fields: dict[str, str | None]) -> LineFact:
    (
        _,
        invoice_id,
        customer_id,
        subscription_id,
        currency,
        subtotal,
        total,
        billable,
        charge_type,
        start,
        end,
        content_hash,
        occurrence,
        product_id,
        sku_id,
        quantity,
        unit_price,
    ) = row[:17]
    return LineFact(
        invoice_id,
        customer_id,
        subscription_id,
        currency,
        _money(subtotal),
        _money(total),
        _maybe_money(billable),
        charge_type,
        None if start is None else _day(start),
        None if end is None else _day(end),
        content_hash,
        occurrence,
        product_id=product_id,
        sku_id=sku_id,
        quantity=_maybe_money(quantity),
        unit_price=_maybe_money(unit_price),
        **raw_fields,
    )


def _billed_on_latest(session: Session, latest: list[str]) -> set[tuple[str, str | None]]:
    """(invoice, subscription) of every line of the latest invoices: who was billed at all."""
    lines = models.LineItem
    query = select(lines.invoice_id, lines.subscription_id).distinct()
    return {(i, s) for i, s in session.execute(query.where(lines.invoice_id.in_(latest)))}


def _plain_rows(session: Session, columns: list[Any], *where: Any) -> list[Any]:
    """Rows as the driver returns them, without SQLAlchemy's per-value type processing."""
    query = select(*(type_coerce(column, NullType()) for column in columns)).where(*where)
    return list(session.connection().execute(query).fetchall())  # Core: no ORM row loading


def _money(value: Any) -> Decimal:
    # SQLite keeps money as exact text, PostgreSQL hands NUMERIC over as Decimal.
    return value if type(value) is Decimal else Decimal(value)


def _maybe_money(value: Any) -> Decimal | None:
    return None if value is None else _money(value)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value[:10])


def load_inputs(session: Session, settings: Settings, as_of: date) -> Inputs:
    """Everything the reconciliation needs, as plain records."""
    suspended = _suspended_since(session)
    invoices = [
        (
            InvoiceFact(
                i.id,
                i.invoice_date,
                i.currency,
                i.total_charges,
                i.billing_period_start,
                i.billing_period_end,
                i.amends_invoice_id,
            ),
            i.paid_amount,
        )
        for i in session.scalars(select(models.Invoice))
    ]
    latest = latest_by_currency(h for h, _ in invoices if h.invoice_date <= as_of)
    subscriptions = [
        SubscriptionFact(
            s.id,
            s.customer_id,
            s.status,
            s.quantity,
            s.billing_type,
            s.billing_cycle,
            s.effective_start_date.date() if s.effective_start_date else None,
            suspended.get(s.id) if s.status == "suspended" else None,
            new_commerce=_is_new_commerce(s.product_type),
            term_end=s.commitment_end_date.date() if s.commitment_end_date else None,
        )
        for s in session.scalars(select(models.Subscription))
    ]
    suspended_ids = [s.id for s in subscriptions if s.status == "suspended"]
    latest_ids = [h.id for h in latest.values()]
    return Inputs(
        as_of=as_of,
        invoices=invoices,
        billed=_billed(session, {h.id: h.invoice_date for h, _ in invoices}),
        lines=_finding_candidates(session, latest_ids, suspended_ids),
        billed_on_latest=_billed_on_latest(session, latest_ids),
        subscriptions=subscriptions,
        customers=dict(session.execute(select(models.Customer.id, models.Customer.name)).all()),
        payments=[
            Payment(reference, customer, _day(day), _money(amount), currency, invoice)
            for reference, customer, day, amount, currency, invoice in _plain_rows(
                session,
                [
                    models.Payment.reference,
                    models.Payment.customer_id,
                    models.Payment.payment_date,
                    models.Payment.amount,
                    models.Payment.currency,
                    models.Payment.invoice_id,
                ],
                models.Payment.voided_at.is_(None),
            )
        ],
        terms=_terms(settings),
        microsoft_terms_days=settings.billing.microsoft_payment_terms_days,
    )


def customer_charges(
    session: Session, settings: Settings, customers: Any, as_of: date
) -> list[Charge]:
    """The charges of some customers, as the reconciliation as of ``as_of`` makes them.

    ``customers`` is a SQL selection of customer ids (a subquery), so that a
    payment import's preview reads only the sums of the customers it touches.
    """
    invoices = models.Invoice
    headers = session.execute(
        select(invoices.id, invoices.invoice_date, invoices.amends_invoice_id).where(
            invoices.invoice_date <= as_of
        )
    ).all()
    dates = {invoice_id: day for invoice_id, day, _ in headers}
    amends = {invoice_id: amended for invoice_id, _, amended in headers if amended is not None}
    billed = _billed(session, dates, models.LineSum.customer_id.in_(customers))
    owed = [line for line in billed if line.customer_id]
    return build_charges(owed, _terms(settings), amends)


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
