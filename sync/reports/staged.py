"""Writing a set of output files so that none is ever seen half-written.

Each file is written beside its own name under a temporary one (``.<name>.<pid>.partial``),
flushed to disk, and every file of the set is given its name only once all of them are
whole. A run that fails or is killed midway leaves the files of the last run that
finished — never an empty or truncated file under a report's or a statement's name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from sync.errors import OutputError

__all__ = ["Staged", "staged"]


class Staged:
    """The files of one set, written under temporary names until :meth:`publish`."""

    def __init__(self, what: str) -> None:
        self._what = what  # "report", "statement": how errors name the file
        self._pending: list[tuple[Path, Path]] = []

    def error(self, target: Path, exc: OSError) -> OutputError:
        """The one-line error for a file that could not be written."""
        return OutputError(
            f"{self._what} {target}: cannot write it ({exc.strerror or exc}); free space or "
            "fix the folder's permissions, then run the command again",
            path=str(target),
        )

    @contextmanager
    def open(self, target: Path, encoding: str | None = None) -> Iterator[IO[str]]:
        """``target``'s temporary file, opened for text (``csv`` newlines left as written)."""
        temporary = self._claim(target)
        try:
            with temporary.open("w", encoding=encoding, newline="") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise self.error(target, exc) from exc

    def write(self, target: Path, data: bytes) -> None:
        """Write ``data`` as ``target``'s temporary file."""
        temporary = self._claim(target)
        try:
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise self.error(target, exc) from exc

    def publish(self) -> None:
        """Give every written file its name (replacing the one a former run wrote)."""
        while self._pending:
            temporary, target = self._pending[0]
            try:
                os.replace(temporary, target)
            except OSError as exc:
                raise self.error(target, exc) from exc
            self._pending.pop(0)

    def discard(self) -> None:
        """Remove the temporary files not published."""
        for temporary, _ in self._pending:
            with suppress(OSError):
                temporary.unlink()
        self._pending.clear()

    def _claim(self, target: Path) -> Path:
        temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
        self._pending.append((temporary, target))
        return temporary


@contextmanager
def staged(what: str) -> Iterator[Staged]:
    """A set of files published together when the ``with`` body ends without error."""
    files = Staged(what)
    try:
        yield files
        files.publish()
    finally:
        files.discard()
