"""Rows read for the reconciliation as the driver returns them, and their values as Python's.

A reconciliation reads a million lines: SQLAlchemy's per-value type
processing is skipped, and money and dates are converted here (SQLite keeps
money as exact text and dates as ISO text, PostgreSQL hands over Decimal and
date).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

__all__ = ["day", "maybe_money", "money", "plain_rows"]


def plain_rows(session: Session, columns: list[Any], *where: Any) -> list[Any]:
    """Rows as the driver returns them, without SQLAlchemy's per-value type processing."""
    query = select(*(type_coerce(column, NullType()) for column in columns)).where(*where)
    return list(session.connection().execute(query).fetchall())  # Core: no ORM row loading


def money(value: Any) -> Decimal:
    # SQLite keeps money as exact text, PostgreSQL hands NUMERIC over as Decimal.
    return value if type(value) is Decimal else Decimal(value)


def maybe_money(value: Any) -> Decimal | None:
    return None if value is None else money(value)


def day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value[:10])
