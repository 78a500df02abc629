"""The unit of writing lines: a batch of positional rows, and what every writer shares.

Rows arrive as positional tuples (``Batch``), built once per line, and go to the
driver as they are: row-by-row type processing in SQLAlchemy cost as much as the
database itself. Every writer keeps the invoice in the caller's transaction, so
an error anywhere rolls the whole invoice back.

Both bulk writers take amounts as exact text and dates as ISO text, made in the
reading thread a column at a time (``TextValues``): that is how SQLite stores
them (``sync.db.types``), and PostgreSQL's text COPY format parses them itself —
its binary format would have the client take every amount apart
(``Decimal.as_tuple``), which costs more than formatting all the rest of the row.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from operator import is_
from typing import Any, Protocol

import msgspec
from sqlalchemy import JSON, Date

from sync.db.engine import EncodedJSON
from sync.db.types import Money

__all__ = [
    "Batch",
    "BatchWriter",
    "Row",
    "TextValues",
    "WriteBehind",
    "carried",
    "json_text",
]

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Batch:
    """Rows of one table, positional, in the order of ``columns``.

    ``constants`` are the columns with one value for every row (the invoice, the
    run): not repeated in each row, and sent once a statement where the database
    allows it.
    """

    columns: tuple[str, ...]
    rows: list[Row]
    constants: tuple[tuple[str, Any], ...] = ()

    def full_rows(self) -> tuple[tuple[str, ...], list[Row]]:
        """Every column of every row, constants last."""
        if not self.constants:
            return self.columns, self.rows
        names, values = zip(*self.constants, strict=True)
        return self.columns + names, [row + values for row in self.rows]


def carried(rows: list[Row]) -> list[int]:
    """The positions of the columns that hold a value in at least one of ``rows``.

    Most of the ~120 documented columns are empty on any one line (a new-commerce
    line carries no Azure or usage field); a column no row holds is left out of
    the statement, and the database fills it with NULL as it would have.
    """
    # The first row decides most columns; count(None) compares by identity first.
    return [
        n
        for n, column in enumerate(zip(*rows, strict=True))
        if column[0] is not None or column.count(None) != len(column)
    ]


class BatchWriter(Protocol):
    """Takes batches in order; ``close`` returns once all are stored, or raises why not."""

    def submit(self, batch: Batch) -> None: ...

    def close(self) -> None: ...

    def abort(self, error: BaseException) -> None: ...


class WriteBehind:
    """Write one batch in a thread while the caller reads and prepares the next.

    One batch at most is in flight: memory stays bounded, rows keep their order,
    and the connection is never used by two threads at once.
    """

    def __init__(self, prepare: Callable[[Batch], Any], write: Callable[[Any], None]) -> None:
        self._prepare = prepare
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._pending: Future[None] | None = None

    def submit(self, batch: Batch) -> None:
        """Prepare ``batch`` here, then write it there once the previous one is written."""
        prepared = self._prepare(batch)
        self._wait()
        self._pending = self._pool.submit(self._write, prepared)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the batch in flight; raise what writing it raised."""
        try:
            self._wait()
        finally:
            self._pool.shutdown()

    def abort(self, error: BaseException) -> None:
        """Stop after the batch in flight (the caller reports ``error``, not this one's)."""
        with suppress(Exception):  # the first error is the one to report
            self.close()


class _DayTexts(dict[Any, str | None]):
    """ISO text of each date met, made once: a sync has few distinct dates, and
    ``str(date)`` costs as much as a lookup does ten times over."""

    def __missing__(self, day: Any) -> str | None:
        if len(self) > 10_000:
            self.clear()
        text = self[day] = None if day is None else str(day)
        return text


class TextValues:
    """A batch's values in one flat list, row after row, amounts and dates as text.

    Amounts become ``str(Decimal)`` (exact, as received) and dates ISO text, for
    the columns the model types as ``Money`` and ``Date``. A column at a time,
    in the reading thread: as driver adapters they would run in the writer with
    the interpreter lock held, while the reader waits.
    """

    def __init__(self, model: Any) -> None:
        kinds = {column.name: column.type for column in model.__table__.columns}
        self._amounts = frozenset(name for name, kind in kinds.items() if isinstance(kind, Money))
        self._dates = frozenset(name for name, kind in kinds.items() if isinstance(kind, Date))
        self._documents = frozenset(name for name, kind in kinds.items() if isinstance(kind, JSON))
        self._as_text = self._amounts | self._dates
        self._days = _DayTexts()

    def constants(self, batch: Batch) -> tuple[tuple[str, ...], list[Any]]:
        """The batch's constant columns and their values."""
        names = tuple(name for name, _ in batch.constants)
        values = [self._text(name, value) for name, value in batch.constants]
        return names, values

    def _text(self, name: str, value: Any) -> Any:
        return None if value is None else str(value) if name in self._as_text else value

    def flat(self, columns: tuple[str, ...], rows: list[Row]) -> list[Any]:
        """Every value of ``rows`` (in ``columns`` order), one row after the other."""
        width = len(columns)
        values = list(chain.from_iterable(rows))
        amounts, dates, documents = self._positions(columns)
        for first in amounts:
            column = values[first::width]
            if any(map(is_, column, repeat(None))):  # compared by identity: Decimal == None is slow
                values[first::width] = [v if v is None else str(v) for v in column]
            else:
                values[first::width] = map(str, column)
        for first in dates:
            values[first::width] = map(self._days.__getitem__, values[first::width])
        for first in documents:
            values[first::width] = map(json_text, values[first::width])
        return values

    @lru_cache(maxsize=64)  # noqa: B019 - one instance per write, a handful of column tuples
    def _positions(self, columns: tuple[str, ...]) -> tuple[list[int], list[int], list[int]]:
        return (
            [n for n, name in enumerate(columns) if name in self._amounts],
            [n for n, name in enumerate(columns) if name in self._dates],
            [n for n, name in enumerate(columns) if name in self._documents],
        )


_ENCODE = msgspec.json.Encoder(decimal_format="number").encode
_EMPTY_LIST = EncodedJSON("[]")


def json_text(value: Any) -> EncodedJSON | None:
    """A JSON column's value as JSON text (amounts as JSON numbers, exactly as received)."""
    if value is None:
        return None
    if value == []:
        return _EMPTY_LIST  # a v2 line's ProductQualifiers, nearly always
    return EncodedJSON(_ENCODE(value).decode())
