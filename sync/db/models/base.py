"""The declarative base: naming convention and the type map every model shares."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    MetaData,
    String,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from sync.db.types import Money, UTCDateTime

__all__ = ["CURRENCY", "DOCUMENT", "ID", "NAMING", "Base"]

# Deterministic constraint names, so migrations can alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DOCUMENT = JSON().with_variant(JSONB(), "postgresql")
ID = String(64)  # Microsoft ids are GUIDs or short codes ("G000123456")
CURRENCY = String(3)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention and shared type map."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        Decimal: Money(),
        date: Date(),
        dict[str, Any]: DOCUMENT,
        list[Any]: DOCUMENT,
    }
