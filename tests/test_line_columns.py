"""Lines of different shapes in one invoice: each stored with exactly its own fields.

The bulk writers name only the columns a batch's lines carry (and PostgreSQL's
COPY is reopened when a later batch carries more): a field is never lost, never
taken from another line, and a field a line lacks is NULL — on both databases.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.partner_center import Provider, read_line
from sync.db.engine import make_session_factory
from sync.db.models import LineItem as LineItemRow
from sync.lines.rows import line_as_received

_BASE = {"customerId": "c", "taxTotal": Decimal("0"), "currency": "EUR"}
# Batches of two (below): the second batch carries fields the first does not, the third
# goes back to fewer, the fourth carries others again.
_RAW: list[dict[str, Any]] = [
    {**_BASE, "subtotal": Decimal("1.00")},
    {**_BASE, "subtotal": Decimal("2.00"), "meterId": "m-2", "unitPrice": Decimal("0.5")},
    {**_BASE, "subtotal": Decimal("3.00"), "usageDate": "2026-10-02T00:00:00Z"},
    {**_BASE, "subtotal": Decimal("4.00"), "consumedQuantity": Decimal("2.500")},
    {**_BASE, "subtotal": Decimal("5.00")},
    {**_BASE, "subtotal": Decimal("6.00")},
    {**_BASE, "subtotal": Decimal("7.00"), "hasPartnerEarnedCredit": False, "meterId": ""},
    {**_BASE, "subtotal": Decimal("8.00"), "productQualifiers": ["Trial"], "tags": "a\tb"},
    {**_BASE, "subtotal": Decimal("9.00"), "NewFieldMicrosoftAdded": {"x": 1}},
]


@pytest.mark.parametrize("batch", [2, 3, 500])
def test_each_line_keeps_exactly_its_own_fields_whatever_the_other_lines_carry(
    migrated: sa.Engine, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    from sync import lines as line_store
    from sync.lines import rows
    from sync.runtime.runs import recorded_run

    monkeypatch.setattr(rows, "LINE_BATCH", batch)
    items = [read_line(raw, "G1", Provider.ONE_TIME, "v1") for raw in _RAW]
    sessions = make_session_factory(migrated)
    with recorded_run(sessions, "test", "manual") as run, sessions.begin() as session:
        assert line_store.replace_lines(session, "G1", "one_time", items, run) == len(_RAW)
    with migrated.connect() as c:
        stored = c.execute(sa.select(LineItemRow.__table__).order_by(LineItemRow.id)).all()
    received = [line_as_received(row._mapping) for row in stored]
    expected = []
    for raw in _RAW:
        line = dict(raw)
        if "usageDate" in line:
            line["usageDate"] = date(2026, 10, 2)
        expected.append({k: v for k, v in line.items() if v is not None})
    assert received == expected
    columns = {column.name for column in LineItemRow.__table__.columns}
    for row, raw in zip(stored, _RAW, strict=True):
        held = {name for name in columns if row._mapping[name] is not None}
        assert {"meter_id", "usage_date", "consumed_quantity", "tags"} & held == {
            name
            for key, name in (
                ("meterId", "meter_id"),
                ("usageDate", "usage_date"),
                ("consumedQuantity", "consumed_quantity"),
                ("tags", "tags"),
            )
            if key in raw
        }
