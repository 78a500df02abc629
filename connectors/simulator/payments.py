"""Sample payments of the simulated partner's customers, as a finance export holds them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from connectors.simulator.catalog import CURRENCIES, PAYER_PROFILES
from connectors.simulator.world import World

__all__ = ["payments_csv"]


def payments_csv(world: World, markup_percent: Decimal = Decimal(0)) -> str:
    """Sample payments of the partner's customers, as a finance export would hold them.

    Amounts are the customer charges (pre-tax Microsoft cost plus markup) of each
    invoice; each customer pays per its profile: prompt, early, late, partly,
    never, or more than owed. Only payments dated on or before the anchor appear.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["customer", "date", "amount", "currency", "reference", "invoice"])
    for index, customer in enumerate(world.customers):
        profile = PAYER_PROFILES[index % len(PAYER_PROFILES)]
        if profile == "never":
            continue
        currency = world.currency_of[customer["id"]]
        exponent = CURRENCIES[currency].exponent
        for invoice in world.invoices:
            if invoice.currency != currency:
                continue
            owed_minor = sum(
                line.subtotal_minor for line in invoice.base_lines if line.customer == index
            )
            if owed_minor <= 0:
                continue
            owed = (Decimal(owed_minor).scaleb(exponent) * (1 + markup_percent / 100)).quantize(
                Decimal(1).scaleb(exponent), ROUND_HALF_UP
            )
            delay = {"early": 2, "late": 75, "overpay": 12}.get(profile, 20)
            paid_on = invoice.invoice_date + timedelta(days=delay)
            if paid_on > world.anchor:
                continue
            if profile == "partial":
                owed = (owed / 2).quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)
            if profile == "overpay" and invoice is world.invoices[0]:
                owed = (owed * Decimal("1.1")).quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)
            reference = f"PAY-{invoice.id}-{index:03d}"
            # Half the payers quote the Microsoft invoice, the others do not.
            named = invoice.id if index % 2 == 0 else ""
            who = customer["companyProfile"]["domain"] if index % 3 == 0 else customer["id"]
            writer.writerow([who, paid_on.isoformat(), str(owed), currency, reference, named])
    return buffer.getvalue()
