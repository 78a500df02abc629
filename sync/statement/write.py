"""``pcsync statement``: build the statements asked for and write each in the chosen formats."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import InputError
from reconciliation.statement import Statement
from sync.config import Settings
from sync.reports.staged import staged
from sync.statement.load import build_statements
from sync.statement.render import FORMATS, render_csv, render_html, render_json

__all__ = ["StatementRun", "write_statements"]


@dataclass(frozen=True)
class StatementRun:
    """What ``pcsync statement`` did: the files written and customers with nothing owed."""

    files: list[Path]
    nothing_owed: list[str]  # one line per customer that got no statement


def _file_stem(statement: Statement) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", statement.customer_id)
    return f"statement-{safe}-{statement.currency}-{statement.as_of.isoformat()}"


def write_statements(
    settings: Settings,
    sessions: sessionmaker[Session],
    customers: Sequence[str],
    as_of: date,
    formats: Sequence[str],
    out_dir: Path,
    *,
    every_customer: bool = False,
) -> StatementRun:
    """Build the statements and write each in the chosen formats; nothing half-written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(
            f"--format: unknown format {unknown[0]!r}; use {', '.join(FORMATS)}"
            if unknown
            else f"--format: name at least one of {', '.join(FORMATS)}"
        )
    if not customers and not every_customer:
        raise InputError("name a customer (tenant id or primary domain), or give --all")
    statements, nothing = build_statements(
        settings, sessions, customers, as_of, every_customer=every_customer
    )
    if statements:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"--out: cannot use the folder {out_dir} ({exc.strerror or exc}); "
                "name a folder pcsync may write to"
            ) from exc
    renderers = {"json": render_json, "csv": render_csv, "html": render_html}
    files = []
    with staged("statement") as out:  # every file whole, or the former ones kept
        for statement in statements:
            for kind in formats:
                path = out_dir / f"{_file_stem(statement)}.{kind}"
                out.write(path, renderers[kind](statement).encode("utf-8"))
                files.append(path)
    return StatementRun(files, nothing)
