"""A statement's products add up to the charge they are listed under, to the cent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.test_statement import CUSTOMERS, _store_ledger, ledger_db  # noqa: F401 - fixture


def test_the_products_of_a_charge_add_up_to_its_net(
    ledger_db: tuple[Any, Any],  # noqa: F811
) -> None:
    """Invoice G000000000, EUR, markup 12.5 %:

        Product 0  SKU0  1 × 0.02   → 0.0225
        Product 1  SKU1  1 × 0.02   → 0.0225
        charge net: round(0.04 × 1.125) = 0.05

    Each product rounded on its own is 0.02 (0.04 together): the statement would show
    products that miss the charge's net by a cent."""
    from sync.statement import build_statements

    settings, sessions = ledger_db
    lines = [(0, 1, Decimal("0.02")), (0, 1, Decimal("0.02"))]
    as_of = _store_ledger(sessions, ([("EUR", 1, lines)], [], 364))
    statements, _ = build_statements(settings, sessions, [CUSTOMERS[0]], as_of)
    (charge,) = statements[0].document()["charges"]
    assert charge["net"] == "0.05"
    assert sum(Decimal(p["amount"]) for p in charge["products"]) == Decimal(charge["net"])
    assert sorted(p["amount"] for p in charge["products"]) == ["0.02", "0.03"]


def test_many_small_products_add_up_to_the_net(
    ledger_db: tuple[Any, Any],  # noqa: F811
) -> None:
    """Three products of 0.02 and two of 0.01, each rounded alone 0.08 in all; the
    charge: 0.08 × 1.125 = 0.09."""
    from sync.statement import build_statements

    settings, sessions = ledger_db
    lines = [(0, 1, Decimal("0.02"))] * 3 + [(0, 1, Decimal("0.01"))] * 2
    as_of = _store_ledger(sessions, ([("USD", 2, lines)], [], 364))
    statements, _ = build_statements(settings, sessions, [CUSTOMERS[0]], as_of)
    (charge,) = statements[0].document()["charges"]
    total = sum(Decimal(p["amount"]) for p in charge["products"])
    assert (str(total), charge["net"]) == (charge["net"], "0.09")
