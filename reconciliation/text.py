"""Text from outside pcsync, made safe to show.

Customer names, domains and product names come from Partner Center; approval
notes and ``--by`` names from operators. They are stored exactly as sent, and
cleaned only where they are shown — a spreadsheet cell, a terminal line, an
e-mail header — because each of those gives some characters a meaning: a
control character makes openpyxl refuse a whole workbook, an escape sequence
moves a terminal's cursor or retitles its window, a CR/LF in a header starts a
header of its own.
"""

from __future__ import annotations

import re

__all__ = ["one_line", "printable"]

# Whole escape sequences first (CSI "ESC [ … final", a terminated OSC "ESC ] … BEL|ST",
# the C1 CSI/OSC introducers, two-character ESC sequences): stripping only the ESC
# would leave their parameters behind as noise. An unterminated OSC loses only its
# introducer, so the text after it stays.
_ESCAPE_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -~]?"
)
# C0 controls but tab and newline, DEL, C1 controls.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Line and paragraph separators, and the tab and newline printable keeps.
_BREAKS = re.compile(r"[\t\n\u2028\u2029\x85]+")


def printable(text: str) -> str:
    """``text`` without escape sequences and control characters; tabs and newlines stay.

    A CR/LF pair becomes a newline, a lone CR is dropped (it would move the cursor
    back over what was already written).
    """
    text = _ESCAPE_SEQUENCES.sub("", text.replace("\r\n", "\n"))
    return _CONTROLS.sub("", text)


def one_line(text: str) -> str:
    """``printable(text)`` on one line: each run of tabs and line breaks becomes a space."""
    return _BREAKS.sub(" ", printable(text))
