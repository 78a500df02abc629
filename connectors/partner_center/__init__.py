"""The Partner Center connector: the only code that talks to Microsoft.

It yields plain typed records (``records.py``) and never touches the database.
"""

from connectors.partner_center.line_item import LineItem, read_line
from connectors.partner_center.options import ClientOptions, Credentials, Endpoints
from connectors.partner_center.records import (
    Customer,
    Invoice,
    LineSource,
    Provider,
    Subscription,
    SubscriptionStatus,
)
from connectors.partner_center.resources import PartnerCenter, StatusChange

__all__ = [
    "ClientOptions",
    "Credentials",
    "Customer",
    "Endpoints",
    "Invoice",
    "LineItem",
    "LineSource",
    "PartnerCenter",
    "Provider",
    "StatusChange",
    "Subscription",
    "SubscriptionStatus",
    "read_line",
]
