"""Payment tests' books: settings and sessions on a migrated database that knows some customers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sync.config import Settings, load_settings
from sync.db.engine import make_session_factory
from sync.db.models import Customer


def open_books(
    write_config: Callable[..., Path],
    migrated: sa.Engine,
    customers: Iterable[tuple[str, str, str]],
) -> tuple[Settings, sessionmaker[Session]]:
    """Settings on ``migrated`` and its sessions, with these (tenant id, name, domain) stored."""
    settings = load_settings(write_config(db_url=migrated.url.render_as_string(False)), {})
    sessions = make_session_factory(migrated)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for tenant, name, domain in customers:
            session.add(
                Customer(
                    id=tenant,
                    name=name,
                    domain=domain,
                    raw={},
                    content_hash="h",
                    first_seen_at=now,
                    synced_at=now,
                )
            )
    return settings, sessions


C1 = "11111111-1111-1111-1111-111111111111"
C2 = "22222222-2222-2222-2222-222222222222"
# Named by their primary domains.
TWO_CUSTOMERS = (
    (C1, "contoso.onmicrosoft.com", "contoso.onmicrosoft.com"),
    (C2, "fabrikam.onmicrosoft.com", "fabrikam.onmicrosoft.com"),
)
