"""Payment files (CSV with any delimiter, UTF-8 with or without BOM; XLSX) → checked rows, streamed.

:func:`open_payment_file` checks the header at once and then reads the rows one
at a time, so a file of a million rows takes no more memory than one of ten.
Each row comes out as a :class:`PaymentRow` or, with every reason, as a
:class:`RejectedRow`; problems name the field and what to do, and the caller
places them as ``file:row: field: reason`` — the row as a spreadsheet shows
it, the header being row 1.

Every input is bounded: amounts follow :func:`reconciliation.money.parse_amount`,
currencies are ISO 4217 codes, dates are plain ISO dates (or the configured
format) between 2000-01-01 and a year from today, no field holds a control
character or more characters than it can have. A file that cannot be read at
all (not UTF-8, a corrupt workbook, a field or line beyond any payment's size,
a duplicated or missing column) raises one :class:`InputError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from connectors.payments.columns import BATCH_ROWS, ColumnChecker, PaymentBatch
from connectors.payments.records import (
    Cell,
    Chunk,
    Unreadable,
    blank,
    cell_text,
    csv_chunks,
    xlsx_chunks,
)
from connectors.payments.rows import (
    EARLIEST_DATE,
    FIELDS,
    LONGEST,
    REQUIRED,
    PaymentRow,
    ReadRules,
    RejectedRow,
    RowChecker,
    RowProblem,
    shown,
)
from reconciliation.errors import InputError

__all__ = [
    "EARLIEST_DATE",
    "FIELDS",
    "REQUIRED",
    "PaymentBatch",
    "PaymentFile",
    "PaymentRow",
    "ReadRules",
    "RejectedRow",
    "RowProblem",
    "open_payment_file",
]

# --- the file -------------------------------------------------------------------------------


class PaymentFile:
    """An open payment file whose header is checked; :meth:`batches` reads and checks its rows.

    Close it (or use it as a context manager) to release the file.
    """

    def __init__(
        self,
        path: Path,
        rules: ReadRules,
        resolve_customer: Callable[[str], str | None],
    ) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._checker = RowChecker(rules, resolve_customer)
        self._number = 1
        self._chunks = self._open(path)
        self._pending: Chunk | None = None
        try:
            first = self._header_record()
            if first is None:
                raise InputError(f"{path.name}: the file is empty; expected a header row")
            self.header = tuple(cell_text(cell).strip() for cell in first)
            self._positions = self._map_columns(rules.columns)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path) -> Iterator[Chunk]:
        self._text_only = path.suffix.lower() not in (".xlsx", ".xlsm")
        if not self._text_only:
            if not path.exists():
                raise InputError(f"{path}: no such file")
            return xlsx_chunks(path, BATCH_ROWS)
        return csv_chunks(self._open_text(path), BATCH_ROWS)

    def _open_text(self, path: Path) -> IO[str]:
        try:
            self._handle = path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such file") from exc
        except IsADirectoryError as exc:
            raise InputError(f"{path}: a folder, not a payments file") from exc
        except OSError as exc:
            raise InputError(f"{path}: cannot open it ({exc.strerror})") from exc
        return self._handle

    def _next_chunk(self) -> Chunk | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        try:
            chunk = next(self._chunks, None)
        except Unreadable as exc:
            raise self._error(exc) from exc
        if chunk is not None and chunk[0]:
            self._number = chunk[0][-1] + 1
        return chunk

    def _error(self, exc: Unreadable) -> InputError:
        where = "" if exc.whole_file else f":{exc.row or self._number}"
        return InputError(f"{self.path.name}{where}: {exc.reason}")

    def _header_record(self) -> list[Cell] | None:
        """The first record that is not blank; the rest of its chunk is kept for the rows."""
        while (chunk := self._next_chunk()) is not None:
            numbers, records = chunk
            for at, record in enumerate(records):
                if not blank(record):
                    self._pending = (numbers[at + 1 :], records[at + 1 :])
                    return record
        return None

    def _map_columns(self, columns: Mapping[str, str]) -> dict[str, int]:
        name = self.path.name
        index: dict[str, int] = {}
        for n, cell in enumerate(self.header):
            key = cell.lower()
            if not key:
                continue
            if key in index:
                raise InputError(
                    f"{name}:1: the header has column {cell!r} twice (columns {index[key] + 1} "
                    f"and {n + 1}); remove or rename one"
                )
            index[key] = n
        positions: dict[str, int] = {}
        for field_name in FIELDS:
            wanted = columns.get(field_name, field_name).lower()
            if wanted in index:
                positions[field_name] = index[wanted]
            elif field_name in REQUIRED:
                listed = ", ".join(shown(h) for h in self.header[:20])
                raise InputError(
                    f"{name}:1: no column {columns.get(field_name, field_name)!r} for "
                    f"{field_name}; the header has {listed} (map it under [payments.columns])"
                )
        return positions

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the file has a column for, in ``FIELDS`` order."""
        return tuple(self._positions)

    def batches(self) -> Iterator[PaymentBatch]:
        """The rows after the header, checked, a batch of consecutive rows at a time."""
        names = tuple(self._positions)
        positions = tuple(self._positions.values())
        needed = max(positions) + 1
        pick = itemgetter(*positions)
        in_order = positions == tuple(range(len(positions)))
        rules = self._checker.rules
        columns = ColumnChecker(
            parse_date=self._checker.parse_date,
            resolve_customer=self._checker.resolve,
            longest=LONGEST,
            fields=names,
            decimal_separator=rules.decimal_separator,
            max_digits=rules.max_digits,
        )
        while (chunk := self._next_chunk()) is not None:
            numbers, records = chunk
            if not records:
                continue
            shortest = min(map(len, records))
            if shortest < needed:
                records = [
                    r if len(r) >= needed else [*r, *[""] * (needed - len(r))] for r in records
                ]
            # The usual file has just the payment columns, in order: its records are the rows.
            picked: list[Any] = (
                records
                if in_order and shortest == needed == max(map(len, records))
                else list(map(pick, records))
            )
            wide = self._too_wide(records) if self._text_only else {}
            for at in wide:
                picked[at] = ("",) * len(names)  # taken by no column check: refused below
            slow: Sequence[int]
            if self._text_only:
                batch, slow = columns.check(numbers, picked)
            else:
                batch, slow = PaymentBatch.empty(), range(len(records))
            rows = batch.rows
            for at in slow:
                if at in wide:
                    texts = {
                        name: cell_text(records[at][position]).strip()
                        for name, position in self._positions.items()
                    }
                    rows.append(RejectedRow(numbers[at], texts, (("row", wide[at]),), None))
                    continue
                if blank(records[at]):
                    continue
                if self._text_only:
                    rows.append(self.check_text(numbers[at], picked[at]))
                else:
                    values = {
                        name: cell.strip() if isinstance(cell, str) else cell
                        for name, cell in zip(names, picked[at], strict=True)
                    }
                    rows.append(self._checker.check(numbers[at], values))
            yield batch

    def _too_wide(self, records: list[list[Cell]]) -> dict[int, str]:
        """CSV records with a value past the header's last column, and why that is refused.

        Such a value is most often half of one split by an unquoted delimiter
        (``1,234.50`` read as ``1`` and ``234.50``): the row's cells cannot be trusted.
        """
        width = len(self.header)
        if max(map(len, records)) <= width:
            return {}
        return {
            at: (
                f"{len(record)} fields, but the header has {width}: more fields than the "
                "header, as when a value holds the delimiter unquoted (like 1,234.50); "
                "quote that value, or give the extra column a header"
            )
            for at, record in enumerate(records)
            if len(record) > width and any(cell_text(cell).strip() for cell in record[width:])
        }

    @property
    def positions(self) -> dict[str, int]:
        """Each field's column (0-based), for the fields the file has."""
        return dict(self._positions)

    @property
    def rules(self) -> ReadRules:
        """How the file's values are read."""
        return self._checker.rules

    @property
    def checker(self) -> RowChecker:
        """The row checker: every rule, and every reason a row is refused."""
        return self._checker

    def check_text(self, number: int, picked: Sequence[str]) -> PaymentRow | RejectedRow:
        """One CSV row's picked cells (``fields`` order), checked alone."""
        texts = dict(zip(self._positions, map(str.strip, picked), strict=True))
        return self._checker.check_text(number, texts)

    def close(self) -> None:
        """Release the file."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> PaymentFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_payment_file(
    path: Path,
    rules: ReadRules,
    resolve_customer: Callable[[str], str | None],
) -> PaymentFile:
    """Open ``path`` and check its header; raise InputError if the file itself is unusable.

    ``resolve_customer`` turns a tenant id or domain into a known customer id.
    """
    return PaymentFile(path, rules, resolve_customer)
