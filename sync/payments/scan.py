"""A payment file scanned into memory: its payments by column, its rejected rows in brief.

About 60 bytes a payment: numbers (row, customer, date, currency, minor
units, the reference's 64-bit hash) in numpy columns that grow in a few large
blocks, texts (reference, amount, invoice) in the Arrow arrays they were read
into. Of a rejected row only its number, its count of problems and its sound
reference are kept, and the first ``shown`` rows whole, for the error list.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from connectors.payments.arrays import ints, strings
from connectors.payments.columnar import (
    Codes,
    Columns,
    NotPlain,
    plain_batches,
    record_columns,
)
from connectors.payments.files import PaymentFile, RejectedRow
from sync.payments.references import text_hashes

__all__ = ["Scan", "scan_file"]


class _Growing:
    """A numpy column that grows by doubling (a million rows in a few large blocks, not a
    thousand small ones that would leave the heap fragmented)."""

    def __init__(self, dtype: Any) -> None:
        self._data = np.zeros(1024, dtype)
        self._size = 0

    def reserve(self, size: int) -> None:
        """Room for ``size`` values in all."""
        if size > len(self._data):
            grown = np.zeros(size, self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown

    def extend(self, values: np.ndarray[Any, Any]) -> None:
        end = self._size + len(values)
        if end > len(self._data):
            self.reserve(max(end, len(self._data) + len(self._data) // 4))
        self._data[self._size : end] = values
        self._size = end

    @property
    def values(self) -> np.ndarray[Any, Any]:
        return self._data[: self._size]


_NUMERIC = {
    "numbers": np.int64,
    "customers": np.int32,
    "days": np.int32,
    "currencies": np.int16,
    "units": np.int64,
}


class Scan:
    """The file's rows as read: payments by column, rejected rows in brief."""

    def __init__(self, shown: int) -> None:
        self.shown = shown
        self.codes = Codes()
        self._numeric = {name: _Growing(dtype) for name, dtype in _NUMERIC.items()}
        self._hashes = _Growing(np.uint64)
        self._texts: dict[str, list[pa.Array]] = {"references": [], "amounts": [], "invoices": []}
        self.rejected_numbers: list[int] = []
        self.rejected_problems: list[int] = []
        self.rejected_references: list[str | None] = []
        self.first_rejected: list[RejectedRow] = []

    def reserve(self, rows: int) -> None:
        """Room for about ``rows`` payments (the file's size over its first rows' size)."""
        for growing in (*self._numeric.values(), self._hashes):
            growing.reserve(rows)

    def add(self, columns: Columns) -> None:
        for name, growing in self._numeric.items():
            growing.extend(getattr(columns, name))
        self._hashes.extend(text_hashes(columns.references))
        for name, arrays in self._texts.items():
            arrays.append(getattr(columns, name))
        for row in columns.rows:
            self.rejected_numbers.append(row.row)
            self.rejected_problems.append(len(row.problems))
            self.rejected_references.append(row.reference)
            if len(self.first_rejected) < self.shown:
                self.first_rejected.append(row)

    def column(self, name: str) -> np.ndarray[Any, Any]:
        """A numeric column of the payments (a view: no copy)."""
        return self._numeric[name].values

    def forget(self, name: str) -> None:
        """Let a numeric column (or ``"hashes"``) go: its memory is wanted for what follows."""
        if name == "hashes":
            self._hashes = _Growing(np.uint64)
        else:
            self._numeric[name] = _Growing(_NUMERIC[name])

    @property
    def hashes(self) -> np.ndarray[Any, Any]:
        """The payments' references' hashes."""
        return self._hashes.values

    def text_array(self, name: str, positions: np.ndarray[Any, Any]) -> pa.Array:
        """A text column's values at ``positions`` (ascending), as an Arrow array."""
        chunks = self._texts[name]
        ends = np.cumsum([len(chunk) for chunk in chunks])
        cuts = np.searchsorted(positions, ends)
        parts, begin = [], 0
        for chunk, end, cut in zip(chunks, ends.tolist(), cuts.tolist(), strict=True):
            if cut > begin:
                parts.append(chunk.take(ints(positions[begin:cut] - (end - len(chunk)))))
            begin = cut
        return pa.concat_arrays(parts) if parts else strings([])

    def texts(self, name: str, positions: np.ndarray[Any, Any]) -> list[str]:
        """A text column's values at ``positions`` (a chunk at a time: no copy of the column)."""
        chunks = self._texts[name]
        if not chunks:
            return []
        ends = np.cumsum([len(chunk) for chunk in chunks])
        which = np.searchsorted(ends, positions, side="right")
        found: list[str] = [""] * len(positions)
        for chunk in np.unique(which).tolist():
            at = np.flatnonzero(which == chunk)
            local = positions[at] - (ends[chunk] - len(chunks[chunk]))
            values = chunks[chunk].take(ints(local)).to_pylist()
            for n, value in zip(at.tolist(), values, strict=True):
                found[n] = value
        return found


def scan_file(file: PaymentFile, shown: int) -> Scan:
    """Every row of ``file``, by column if it is plain, else record by record."""
    scan = Scan(shown)
    try:
        for n, columns in enumerate(plain_batches(file, scan.codes)):
            if n == 0 and columns.size:
                scan.reserve(int(file.path.stat().st_size / columns.size * len(columns.numbers)))
            scan.add(columns)
    except NotPlain:
        scan = Scan(shown)
        for batch in file.batches():
            scan.add(record_columns(batch, scan.codes))
    return scan
