"""SQLite: a thread runs multi-row INSERTs while the reading thread reads on.

The driver lets go of the interpreter lock while SQLite runs a statement, and
taking it back after every row, against a reading thread that holds it, cost
more than the insert itself; so a statement carries as many rows as SQLite
takes parameters — up to ``_ROWS``: SQLite keeps a prepared statement's program,
~50 KB a row of ~50 values, for as long as the statement is cached, and every
byte counts in a sync's peak memory. A statement names only the columns its rows hold a value in:
binding the ~70 documented fields a line does not carry, as NULLs, cost more
than the rest of the insert.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import Any

from connectors.partner_center.export_lines import picker
from sync.lines.batch import Batch, TextValues, WriteBehind, carried

__all__ = ["sqlite_inserts"]

# Rows a statement (half a batch): a 125-row INSERT is ~1 MB of prepared program, a
# 600-row one ~5 MB, and no faster.
_ROWS = 125


def sqlite_inserts(driver: sqlite3.Connection, model: Any) -> WriteBehind:
    """Multi-row INSERTs into ``model``'s table on ``driver``, written behind the reader."""
    table = model.__tablename__
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    texts = TextValues(model)

    @lru_cache(maxsize=64)
    def statement(constants: tuple[str, ...], columns: tuple[str, ...], rows: int) -> str:
        # The constants are ?1…?k in every row; each plain ? takes the next number after
        # the largest so far, so the rows' own values follow them in the parameter list.
        numbered = [f"?{n}" for n in range(1, len(constants) + 1)]
        values = f"({', '.join(numbered + ['?' for _ in columns])})"
        return (
            f"INSERT INTO {table} ({', '.join(constants + columns)}) "  # noqa: S608 - our names
            f"VALUES {', '.join([values] * rows)}"
        )

    def prepare(batch: Batch) -> list[tuple[str, list[Any]]]:
        names, constants = texts.constants(batch)
        columns, all_rows = batch.columns, batch.rows
        keep = carried(all_rows)
        if len(keep) < len(columns):  # the columns no row holds stay NULL, unbound
            columns = tuple(columns[n] for n in keep)
            all_rows = list(map(picker(keep), all_rows))
        per_statement = max(1, min(_ROWS, (limit - len(constants)) // max(1, len(columns))))
        prepared = []
        for start in range(0, len(all_rows), per_statement):
            rows = all_rows[start : start + per_statement]
            values = texts.flat(columns, rows)
            prepared.append((statement(names, columns, len(rows)), constants + values))
        return prepared

    def write(prepared: list[tuple[str, list[Any]]]) -> None:
        for text, parameters in prepared:
            driver.execute(text, parameters)

    return WriteBehind(prepare, write)
