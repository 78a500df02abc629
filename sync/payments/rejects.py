"""``<file>.rejected.csv``: the rows ``--skip-bad-rows`` left out, each with its reasons."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from connectors.payments.files import RowProblem
from reconciliation.errors import InputError

__all__ = ["Rejects"]


class Rejects:
    """``<file>.rejected.csv``, written beside the file; opened before anything is stored
    so that a folder one cannot write to stops the import at once."""

    def __init__(self, path: Path) -> None:
        self.target = path.with_name(path.stem + ".rejected.csv")
        self._partial = self.target.with_name(self.target.name + ".partial")
        try:
            self._handle: IO[str] = self._partial.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise InputError(
                f"{self.target}: cannot write the rejects file ({exc.strerror}); run the "
                "import where the file's folder is writable, or copy the file somewhere "
                "writable first"
            ) from exc

    def write(self, problems: Iterable[RowProblem]) -> int:
        """Write one line per rejected row, all its reasons together; return the rows."""
        writer = csv.writer(self._handle)
        rows = 0
        current: list[RowProblem] = []
        for problem in problems:
            if current and problem.row != current[0].row:
                rows += self._row(writer, current)
                current = []
            current.append(problem)
        if current:
            rows += self._row(writer, current)
        return rows

    def _row(self, writer: Any, problems: list[RowProblem]) -> int:
        first = problems[0]
        if self._handle.tell() == 0:
            writer.writerow(["row", *first.values, "problem"])
        reasons = "; ".join(f"{p.field}: {p.reason}" for p in problems)
        writer.writerow([first.row, *first.values.values(), reasons])
        return 1

    def keep(self) -> Path:
        """Close the file under its final name."""
        self._handle.close()
        os.replace(self._partial, self.target)
        return self.target

    def discard(self) -> None:
        """Close and remove the file (nothing was rejected, or the import failed)."""
        self._handle.close()
        self._partial.unlink(missing_ok=True)
