"""Every documented field of a reconciliation line, its column and its type.

The fields are the union of Microsoft's documented line shapes: the v1 new-commerce
("one-time") line, the v2 billed-reconciliation export (the same fields, PascalCase),
the legacy Office licence-based and Azure usage-based lines, and the daily-rated
usage line (/work/shared/partner-center-api.md §6–7). A key is matched whatever its
case. Each field has a column of its own, typed:

* ``TEXT``: exact text as received ("" stays "");
* ``IDENT``: an identifier Microsoft sends as text or as a number (``mpnId``), as text;
* ``MONEY``: amounts, prices, quantities and rates, exact decimals (NUMERIC);
* ``DAY``: a calendar date (Microsoft sends midnight date-times);
* ``BOOL`` and ``JSON`` (a list or an object, e.g. ``productQualifiers``).

Date-times that carry a time of day (``orderDate``, ``subscriptionStartDate``…)
are kept as their exact ISO text: a timestamp column would drop Microsoft's
seventh fractional digit and the offset as sent.

Fifteen fields are the columns pcsync reads itself (``SHARED``: customer, subscription,
amounts, currency, charge days); those columns hold pcsync's normalised reading
(a customer id without ``org:``, lower-cased), so when the received text differs
from it, the original is kept in the line's ``extra`` under its key. ``extra``
otherwise holds the fields Microsoft adds later — nothing received is lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["BY_KEY", "FIELDS", "SHARED", "Field", "Kind", "field_columns"]


class Kind(enum.Enum):
    """How a field is typed in its column."""

    TEXT = "text"
    IDENT = "ident"
    MONEY = "money"
    DAY = "day"
    BOOL = "bool"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Field:
    """One documented field: its key (camelCase, as v1 spells it), column and type."""

    key: str
    column: str
    kind: Kind


T, ID, M, D, B, J = Kind.TEXT, Kind.IDENT, Kind.MONEY, Kind.DAY, Kind.BOOL, Kind.JSON

# The documented fields pcsync reads itself, by the column that holds its reading of them.
SHARED: Final = (
    Field("customerId", "customer_id", T),
    Field("customerName", "customer_name", T),
    Field("subscriptionId", "subscription_id", T),
    Field("productId", "product_id", T),
    Field("skuId", "sku_id", T),
    Field("productName", "product_name", T),
    Field("chargeType", "charge_type", T),
    Field("quantity", "quantity", M),
    Field("billableQuantity", "billable_quantity", M),
    Field("subtotal", "subtotal", M),
    Field("taxTotal", "tax_total", M),
    Field("totalForCustomer", "total_for_customer", M),
    Field("currency", "currency", T),
    Field("chargeStartDate", "charge_start_date", D),
    Field("chargeEndDate", "charge_end_date", D),
)

_OWN = (
    # new commerce (v1 one-time, v2 export, unbilled)
    ("partnerId", T), ("customerDomainName", T), ("customerCountry", T), ("invoiceNumber", T),
    ("mpnId", ID), ("resellerMpnId", ID), ("orderId", T), ("orderDate", T), ("availabilityId", T),
    ("skuName", T), ("productQualifiers", J), ("unitPrice", M), ("effectiveUnitPrice", M),
    ("unitType", T), ("publisherName", T), ("publisherId", T), ("subscriptionDescription", T),
    ("subscriptionStartDate", T), ("subscriptionEndDate", T), ("termAndBillingCycle", T),
    ("alternateId", T), ("referenceId", T), ("priceAdjustmentDescription", T),
    ("discountDetails", T), ("pricingCurrency", T), ("pcToBCExchangeRate", M),
    ("pcToBCExchangeRateDate", T), ("meterDescription", T), ("billingFrequency", T),
    ("reservationOrderId", T), ("creditReasonCode", T), ("promotionId", T),
    ("invoiceLineItemType", T), ("billingProvider", T), ("attributes", J), ("quoteId", T),
    ("providerName", T), ("providerId", T), ("productCategory", T),
    # legacy Office licence-based
    ("tier2MpnId", ID), ("syndicationPartnerSubscriptionNumber", T), ("offerId", T),
    ("durableOfferId", T), ("offerName", T), ("domainName", T), ("billingCycleType", T),
    ("subscriptionName", T), ("amount", M), ("totalOtherDiscount", M), ("tax", M),
    # legacy Azure usage-based
    ("partnerName", T), ("partnerBillableAccountId", T), ("customerCompanyName", T),
    ("serviceName", T), ("serviceType", T), ("resourceGuid", T), ("resourceName", T),
    ("region", T), ("sku", T), ("detailLineItemId", ID), ("consumedQuantity", M),
    ("includedQuantity", M), ("overageQuantity", M), ("listPrice", M), ("pretaxCharges", M),
    ("taxAmount", M), ("postTaxTotal", M), ("pretaxEffectiveRate", M),
    ("postTaxEffectiveRate", M), ("unit", T), ("consumptionDiscount", M),
    ("consumptionPrice", M),
    # daily-rated usage
    ("usageDate", D), ("meterType", T), ("meterCategory", T), ("meterId", T),
    ("meterSubCategory", T), ("meterName", T), ("meterRegion", T), ("unitOfMeasure", T),
    ("resourceLocation", T), ("consumedService", T), ("resourceGroup", T),
    ("resourceUri", T), ("tags", T), ("additionalInfo", T), ("serviceInfo1", T),
    ("serviceInfo2", T), ("billingPreTaxTotal", M), ("billingCurrency", T),
    ("pricingPreTaxTotal", M), ("entitlementId", T), ("entitlementDescription", T),
    ("rateOfPartnerEarnedCredit", M), ("hasPartnerEarnedCredit", B),
)  # fmt: skip

# Column names that differ from the key's snake case: ``unit_price`` is pcsync's reading
# (the effective price when there is one), so Microsoft's own ``unitPrice`` is the list price.
_COLUMN_NAMES = {
    "unitPrice": "list_unit_price",
    "pcToBCExchangeRate": "pc_to_bc_exchange_rate",
    "pcToBCExchangeRateDate": "pc_to_bc_exchange_rate_date",
    "tier2MpnId": "tier2_mpn_id",
    "serviceInfo1": "service_info1",
    "serviceInfo2": "service_info2",
}


def _snake(key: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in key)


# The documented fields that have a column of their own, in the order a line carries them.
FIELDS: Final = tuple(Field(key, _COLUMN_NAMES.get(key, _snake(key)), kind) for key, kind in _OWN)
# Every documented field by its key in lower case (keys are matched whatever their case).
BY_KEY: Final = {f.key.lower(): f for f in (*SHARED, *FIELDS)}


def field_columns() -> tuple[str, ...]:
    """The columns of ``FIELDS``, in order."""
    return tuple(f.column for f in FIELDS)
