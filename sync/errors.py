"""Errors of the application's run time: the database, the run lock, collections' safety, output.

All sit directly under :class:`~reconciliation.errors.PcsyncError`; the command line
turns each into one line and exit code 1.
"""

from __future__ import annotations

from reconciliation.errors import PcsyncError

__all__ = [
    "ApplyError",
    "DatabaseError",
    "LockedError",
    "NoticeError",
    "OutputError",
    "SafetyLimitError",
]


class DatabaseError(PcsyncError):
    """The database cannot be reached, or its schema is not the one expected."""


class LockedError(PcsyncError):
    """Another pcsync run holds the database's run lock."""


class SafetyLimitError(PcsyncError):
    """A destructive action was refused as a whole by a configured safety limit."""


class ApplyError(PcsyncError):
    """Some changes of an apply failed; the rest were made and a rerun finishes the work."""


class NoticeError(PcsyncError):
    """A notice could not be sent; the others were, and the next run retries it."""


class OutputError(PcsyncError):
    """A file pcsync writes (a report) could not be written; ``path`` names it.

    The file is not left half-written; free space or fix the folder's permissions
    and run the command again.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
