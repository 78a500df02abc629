"""The root of pcsync's one exception tree, and the errors of the domain.

Each layer adds the errors of its own concerns under :class:`PcsyncError`, so the
command line turns any of them into one line, as httpx does with one tree::

    PcsyncError                  anything pcsync raises on purpose
    ├── ConfigError              fix the configuration               (here)
    ├── InputError               fix the input file or argument      (here)
    ├── DataError                data breaks a rule of the product   (here)
    │   └── RecordError          a received record is unreadable     (connectors.partner_center)
    ├── ConnectorError …         talking to Microsoft failed         (connectors.partner_center)
    └── DatabaseError, LockedError, SafetyLimitError, ApplyError,
        NoticeError, OutputError the application's run time          (sync.errors)

``reconciliation`` imports nothing from the other packages, so the root lives here.
Messages never contain secrets: the code building them only ever sees ids, URLs
without query strings and Microsoft's own error text.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "InputError", "PcsyncError"]


class PcsyncError(Exception):
    """Root of every error pcsync raises on purpose.

    The command line exits with 2 for :class:`ConfigError` and :class:`InputError`
    (the user must fix how pcsync is called or configured), 1 for anything else.
    """


class ConfigError(PcsyncError):
    """The configuration is missing, malformed or inconsistent.

    ``problems`` holds every problem found, each naming its key, so a user can
    fix them all in one go.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class InputError(PcsyncError):
    """An input file or command-line value is unusable.

    ``problems`` lists every bad row or value (``file:row: field: reason``).
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class DataError(PcsyncError):
    """Data (stored, imported or received) breaks one of the product's rules."""
