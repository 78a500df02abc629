"""Every documented line field a column of its own; only unknown fields in ``extra``

Each line stored its whole JSON (``raw``, ~1.5 KB of ~2 KB) beside the columns
pcsync reads; finance reached the other ~40 fields only through ``json_extract``.
Now every documented field of a line (``connectors/partner_center/line_fields.py``)
has a typed column (exact text, NUMERIC amounts, dates), and ``extra`` (JSON)
holds what has no documented field, under its key as received — so nothing is
lost — and ``raw`` goes.

The columns are the 95 documented fields of this revision, frozen below: a field
documented later comes with a migration of its own (the models are built from
``line_fields.FIELDS``, and a test holds models and migrations equal), and until
then this migration keeps its value in ``extra`` like any unknown field.

Existing lines are moved in batches of ``_BATCH`` rows by id (never all in
memory), each read by the same reader a sync uses. A line's content hash, taken
of its JSON text, stays as it was. A stored line that can no longer be read (it
was stored, so it should not happen) is kept whole, its text under
``_UNREADABLE_KEY`` in ``extra``, counted in the log, and given back as it was
by the downgrade.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

import sync.db.types
from connectors.partner_center.line_fields import FIELDS
from connectors.partner_center.line_item import read_line
from connectors.partner_center.records import UNREADABLE, Provider

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLES = ("invoice_line_items", "unbilled_line_items")
_BATCH = 2000
# Not a key Microsoft can send (no documented key has a colon).
_UNREADABLE_KEY = "pcsync:unreadable"
_log = logging.getLogger("alembic.runtime.migration")

# (key, column, kind) of every documented field given a column here, as of this revision.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ('partnerId', 'partner_id', 'text'),
    ('customerDomainName', 'customer_domain_name', 'text'),
    ('customerCountry', 'customer_country', 'text'),
    ('invoiceNumber', 'invoice_number', 'text'),
    ('mpnId', 'mpn_id', 'ident'),
    ('resellerMpnId', 'reseller_mpn_id', 'ident'),
    ('orderId', 'order_id', 'text'),
    ('orderDate', 'order_date', 'text'),
    ('availabilityId', 'availability_id', 'text'),
    ('skuName', 'sku_name', 'text'),
    ('productQualifiers', 'product_qualifiers', 'json'),
    ('unitPrice', 'list_unit_price', 'money'),
    ('effectiveUnitPrice', 'effective_unit_price', 'money'),
    ('unitType', 'unit_type', 'text'),
    ('publisherName', 'publisher_name', 'text'),
    ('publisherId', 'publisher_id', 'text'),
    ('subscriptionDescription', 'subscription_description', 'text'),
    ('subscriptionStartDate', 'subscription_start_date', 'text'),
    ('subscriptionEndDate', 'subscription_end_date', 'text'),
    ('termAndBillingCycle', 'term_and_billing_cycle', 'text'),
    ('alternateId', 'alternate_id', 'text'),
    ('referenceId', 'reference_id', 'text'),
    ('priceAdjustmentDescription', 'price_adjustment_description', 'text'),
    ('discountDetails', 'discount_details', 'text'),
    ('pricingCurrency', 'pricing_currency', 'text'),
    ('pcToBCExchangeRate', 'pc_to_bc_exchange_rate', 'money'),
    ('pcToBCExchangeRateDate', 'pc_to_bc_exchange_rate_date', 'text'),
    ('meterDescription', 'meter_description', 'text'),
    ('billingFrequency', 'billing_frequency', 'text'),
    ('reservationOrderId', 'reservation_order_id', 'text'),
    ('creditReasonCode', 'credit_reason_code', 'text'),
    ('promotionId', 'promotion_id', 'text'),
    ('invoiceLineItemType', 'invoice_line_item_type', 'text'),
    ('billingProvider', 'billing_provider', 'text'),
    ('attributes', 'attributes', 'json'),
    ('quoteId', 'quote_id', 'text'),
    ('providerName', 'provider_name', 'text'),
    ('providerId', 'provider_id', 'text'),
    ('productCategory', 'product_category', 'text'),
    ('tier2MpnId', 'tier2_mpn_id', 'ident'),
    ('syndicationPartnerSubscriptionNumber', 'syndication_partner_subscription_number', 'text'),
    ('offerId', 'offer_id', 'text'),
    ('durableOfferId', 'durable_offer_id', 'text'),
    ('offerName', 'offer_name', 'text'),
    ('domainName', 'domain_name', 'text'),
    ('billingCycleType', 'billing_cycle_type', 'text'),
    ('subscriptionName', 'subscription_name', 'text'),
    ('amount', 'amount', 'money'),
    ('totalOtherDiscount', 'total_other_discount', 'money'),
    ('tax', 'tax', 'money'),
    ('partnerName', 'partner_name', 'text'),
    ('partnerBillableAccountId', 'partner_billable_account_id', 'text'),
    ('customerCompanyName', 'customer_company_name', 'text'),
    ('serviceName', 'service_name', 'text'),
    ('serviceType', 'service_type', 'text'),
    ('resourceGuid', 'resource_guid', 'text'),
    ('resourceName', 'resource_name', 'text'),
    ('region', 'region', 'text'),
    ('sku', 'sku', 'text'),
    ('detailLineItemId', 'detail_line_item_id', 'ident'),
    ('consumedQuantity', 'consumed_quantity', 'money'),
    ('includedQuantity', 'included_quantity', 'money'),
    ('overageQuantity', 'overage_quantity', 'money'),
    ('listPrice', 'list_price', 'money'),
    ('pretaxCharges', 'pretax_charges', 'money'),
    ('taxAmount', 'tax_amount', 'money'),
    ('postTaxTotal', 'post_tax_total', 'money'),
    ('pretaxEffectiveRate', 'pretax_effective_rate', 'money'),
    ('postTaxEffectiveRate', 'post_tax_effective_rate', 'money'),
    ('unit', 'unit', 'text'),
    ('consumptionDiscount', 'consumption_discount', 'money'),
    ('consumptionPrice', 'consumption_price', 'money'),
    ('usageDate', 'usage_date', 'day'),
    ('meterType', 'meter_type', 'text'),
    ('meterCategory', 'meter_category', 'text'),
    ('meterId', 'meter_id', 'text'),
    ('meterSubCategory', 'meter_sub_category', 'text'),
    ('meterName', 'meter_name', 'text'),
    ('meterRegion', 'meter_region', 'text'),
    ('unitOfMeasure', 'unit_of_measure', 'text'),
    ('resourceLocation', 'resource_location', 'text'),
    ('consumedService', 'consumed_service', 'text'),
    ('resourceGroup', 'resource_group', 'text'),
    ('resourceUri', 'resource_uri', 'text'),
    ('tags', 'tags', 'text'),
    ('additionalInfo', 'additional_info', 'text'),
    ('serviceInfo1', 'service_info1', 'text'),
    ('serviceInfo2', 'service_info2', 'text'),
    ('billingPreTaxTotal', 'billing_pre_tax_total', 'money'),
    ('billingCurrency', 'billing_currency', 'text'),
    ('pricingPreTaxTotal', 'pricing_pre_tax_total', 'money'),
    ('entitlementId', 'entitlement_id', 'text'),
    ('entitlementDescription', 'entitlement_description', 'text'),
    ('rateOfPartnerEarnedCredit', 'rate_of_partner_earned_credit', 'money'),
    ('hasPartnerEarnedCredit', 'has_partner_earned_credit', 'bool'),
)
_COLUMN_OF = {key: column for key, column, _ in _COLUMNS}
_JSON_COLUMNS = {column for _, column, kind in _COLUMNS if kind == "json"}
# Amounts the downgrade reads as exact decimals (SQLite keeps them as text): these and the
# amounts pcsync read itself since before this revision.
_MONEY_COLUMNS = {column for _, column, kind in _COLUMNS if kind == "money"} | {
    "quantity",
    "billable_quantity",
    "subtotal",
    "tax_total",
    "total_for_customer",
}


def _type(kind: str) -> Any:
    return {
        "text": sa.Text(),
        "ident": sa.Text(),
        "money": sync.db.types.Money(),
        "day": sa.Date(),
        "bool": sa.Boolean(),
        "json": sa.JSON(),
    }[kind]


def _json(value: Any) -> Any:
    from sync.lines.batch import json_text  # amounts as JSON numbers, exactly

    return json_text(value)


def _moved(raw: str, invoice_id: str, provider: str, source: str) -> tuple[dict[str, Any], bool]:
    """A stored line's documented fields and extra, read from its JSON text; and if it read."""
    moved: dict[str, Any] = dict.fromkeys(_COLUMN_OF.values())
    try:
        record = json.loads(raw, parse_float=Decimal)
        if not isinstance(record, dict):
            raise TypeError("not an object")  # noqa: TRY301 - one fallback for every shape
        line = read_line(record, invoice_id, Provider(provider), source, raw)
    except (*UNREADABLE, json.JSONDecodeError):
        moved["extra"] = _json({_UNREADABLE_KEY: raw})  # kept whole: it was stored, so it stays
        return moved, False
    extra = None if line.extra is None else dict(line.extra)
    for field, value in zip(FIELDS, line.fields, strict=True):
        column = _COLUMN_OF.get(field.key)
        if column is None:  # documented after this revision: no column yet
            if value is not None:
                extra = {**(extra or {}), field.key: value}
        else:
            moved[column] = _json(value) if column in _JSON_COLUMNS else value
    moved["extra"] = _json(extra)
    return moved, True


def _move(bind: sa.Connection, name: str) -> None:
    lines = sa.table(
        name,
        sa.column("id", sa.Integer()),
        sa.column("raw", sa.Text()),
        sa.column("provider", sa.String()),
        sa.column("source", sa.String()),
        *(sa.column("invoice_id", sa.String()) for _ in [0] if name == "invoice_line_items"),
    )
    target = sa.table(
        name,
        sa.column("id", sa.Integer()),
        *(sa.column(column, _type(kind)) for _, column, kind in _COLUMNS),
        sa.column("extra", sa.JSON()),
    )
    invoice = lines.c.invoice_id if "invoice_id" in lines.c else sa.literal("unbilled")
    statement = target.update().where(target.c.id == sa.bindparam("_id"))
    last, unreadable = 0, 0
    while True:
        rows = bind.execute(
            sa.select(lines.c.id, lines.c.raw, invoice, lines.c.provider, lines.c.source)
            .where(lines.c.id > last)
            .order_by(lines.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        moved = [(row_id, *_moved(*rest)) for row_id, *rest in rows]
        unreadable += sum(1 for _, _, readable in moved if not readable)
        bind.execute(statement, [{"_id": row_id, **values} for row_id, values, _ in moved])
        last = rows[-1][0]
    if unreadable:
        _log.warning(
            "%s: %d line(s) whose stored JSON cannot be read kept whole in extra[%r]",
            name,
            unreadable,
            _UNREADABLE_KEY,
        )


def upgrade() -> None:
    bind = op.get_bind()
    for name in _TABLES:
        for _, column, kind in _COLUMNS:
            op.add_column(name, sa.Column(column, _type(kind), nullable=True))
        op.add_column(name, sa.Column("extra", sa.JSON(), nullable=True))
        _move(bind, name)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("raw")


# The shared fields' keys and the columns that held them before this revision.
_SHARED = (
    ("customerId", "customer_id"), ("customerName", "customer_name"),
    ("subscriptionId", "subscription_id"), ("productId", "product_id"), ("skuId", "sku_id"),
    ("productName", "product_name"), ("chargeType", "charge_type"), ("quantity", "quantity"),
    ("billableQuantity", "billable_quantity"), ("subtotal", "subtotal"),
    ("taxTotal", "tax_total"), ("totalForCustomer", "total_for_customer"),
    ("currency", "currency"), ("chargeStartDate", "charge_start_date"),
    ("chargeEndDate", "charge_end_date"),
)  # fmt: skip


def _received(row: Any) -> str:
    """A line's JSON text from its columns and extra, by this revision's own field list.

    The same values under the same keys (amounts exact); not the same text: keys come
    back camelCase and midnight date-times as dates, so a query on ``raw`` that named a
    v2 key (``PartnerId``) must name the camelCase one after a downgrade.
    """
    extra = row["extra"] or {}
    if set(extra) == {_UNREADABLE_KEY}:
        return str(extra[_UNREADABLE_KEY])
    kept = {key.lower() for key in extra}
    pairs = (*_SHARED, *((key, column) for key, column, _ in _COLUMNS))
    received = {
        key: row[column]
        for key, column in pairs
        if key.lower() not in kept and row[column] is not None
    }
    received.update((key, value) for key, value in extra.items() if value is not None)
    return str(_json(received))  # amounts as JSON numbers, as received


def downgrade() -> None:
    bind = op.get_bind()
    for name in _TABLES:
        op.add_column(name, sa.Column("raw", sa.Text(), nullable=True))
        table = sa.Table(name, sa.MetaData(), autoload_with=bind)
        for reflected in table.columns:
            if reflected.name in _MONEY_COLUMNS:
                reflected.type = sync.db.types.Money()
        statement = table.update().where(table.c.id == sa.bindparam("_id"))
        last = 0
        while True:  # in batches by id, like the upgrade: never every line in memory
            rows = (
                bind.execute(
                    sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(_BATCH)
                )
                .mappings()
                .all()
            )
            if not rows:
                break
            bind.execute(
                statement.values(raw=sa.bindparam("raw")),
                [{"_id": row["id"], "raw": _received(row)} for row in rows],
            )
            last = rows[-1]["id"]
        with op.batch_alter_table(name) as batch:
            for _, column, _ in _COLUMNS:
                batch.drop_column(column)
            batch.drop_column("extra")
            batch.alter_column("raw", nullable=False)
