"""PostgreSQL: an invoice's line rows in a COPY, sent while the next are read.

The reading thread formats rows into COPY data (psycopg's formatter, which
needs the interpreter lock); a thread of ours sends it, ~256 KB ahead at most,
and the server stores rows as they arrive — no round trip per batch. Any error,
ours or the server's, ends the COPY and the caller rolls the invoice back.

The text format, with amounts and dates already text (``TextValues``): the
binary one has the client take every amount apart into base-10000 digits
under the interpreter lock, while the server parses text on a core of its own
(docs/performance.md).
"""

from __future__ import annotations

import queue
import threading
from contextlib import ExitStack, suppress
from typing import Any

from psycopg import Cursor
from psycopg.abc import Buffer
from psycopg.copy import Copy, LibpqWriter

from connectors.partner_center.export_lines import picker
from sync.lines.batch import Batch, Row, TextValues, carried

__all__ = ["CopyStream"]

# COPY data (in psycopg's ~32 KB buffers) allowed ahead of the server: ~256 KB, some two
# hundred rows. Part of the sync's peak memory, which has a budget (docs/performance.md).
_BUFFERS_AHEAD = 8


class _SendingThread(LibpqWriter):
    """psycopg's writer, sending from a thread of its own what the caller has formatted.

    Formatting rows needs the interpreter lock; sending and the server's work do
    not, so the two overlap. The queue is bounded: a slow server makes the
    caller wait rather than memory grow.
    """

    def __init__(self, cursor: Cursor[Any]) -> None:
        super().__init__(cursor)
        self._queue: queue.Queue[Buffer] = queue.Queue(maxsize=_BUFFERS_AHEAD)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _send(self) -> None:
        try:
            while data := self._queue.get():
                super().write(data)
        except BaseException as exc:  # handed to the caller at its next write or finish
            self._error = exc
            while self._queue.get():  # keep taking, so that the caller never blocks
                pass

    def write(self, data: Buffer) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._send, name="copy-send", daemon=True)
            self._thread.start()
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._thread is not None:
            self._queue.put(b"")
            self._thread.join()
        if self._error is not None and exc is None:
            raise self._error
        super().finish(exc)


class CopyStream:
    """Every batch of one invoice into a COPY, opened with the first batch.

    The COPY names only the columns the rows hold a value in (the rest stay
    NULL): about 50 of a line's ~120. A batch that holds one more column ends
    that COPY and opens another, naming both batches' columns, in the same
    transaction and order — a handful a sync at most, as lines of one invoice
    share their shape.
    """

    def __init__(self, cursor: Cursor[Any], table: str, texts: TextValues) -> None:
        self._cursor = cursor
        self._table = table
        self._texts = texts
        self._open = ExitStack()
        self._open.enter_context(cursor)
        self._copying = ExitStack()
        self._copy: Copy | None = None
        self._keep: list[int] = []
        self._columns: tuple[str, ...] = ()
        self._pick: Any = None

    def _reopen(self, batch: Batch, names: tuple[str, ...], keep: list[int]) -> Copy:
        """End the COPY (the server's verdict on its rows arrives here), open one for ``keep``."""
        self._copying.close()
        self._keep = keep
        self._columns = tuple(batch.columns[n] for n in keep)
        self._pick = None if len(keep) == len(batch.columns) else picker(keep)
        statement = f"COPY {self._table} ({', '.join(self._columns + names)}) FROM STDIN"
        writer = _SendingThread(self._cursor)
        self._copy = self._copying.enter_context(self._cursor.copy(statement, writer=writer))
        return self._copy

    def submit(self, batch: Batch) -> None:
        names, constants = self._texts.constants(batch)
        keep = carried(batch.rows)
        copy = self._copy
        if copy is None or not set(keep).issubset(self._keep):
            copy = self._reopen(batch, names, sorted(set(keep).union(self._keep)))
        rows: list[Row] = batch.rows if self._pick is None else list(map(self._pick, batch.rows))
        write_row = copy.write_row
        values = self._texts.flat(self._columns, rows)
        width = len(self._columns)
        for start in range(0, len(values), width):
            write_row(values[start : start + width] + constants)

    def close(self) -> None:
        """Finish the COPY: the server's verdict on every row arrives here."""
        try:
            self._copying.close()
        finally:
            self._open.close()

    def abort(self, error: BaseException) -> None:
        """End the COPY with ``error`` (the server discards what it took); ``error`` is kept."""
        with suppress(Exception):
            self._copying.__exit__(type(error), error, error.__traceback__)
        with suppress(Exception):
            self._open.__exit__(type(error), error, error.__traceback__)
