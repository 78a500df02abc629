"""Text from Partner Center and from operators, made safe for the terminal.

Customer and product names, domains, invoice ids, approval notes and ``--by``
names are printed by the command line. On their way out they lose escape
sequences and control characters (which would move the cursor, clear the
screen or retitle the window), and in Rich tables they are plain text, never
markup: a note holding ``[/]`` would otherwise break the whole table.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from reconciliation.text import one_line, printable

__all__ = ["cell", "markup", "plain"]


def plain(value: object) -> str:
    """``value`` as one printable line, for ``click.echo`` (which interprets no markup)."""
    return one_line(str(value))


def cell(value: object | None) -> Text:
    """A Rich table cell showing ``value`` literally (no markup, no emoji codes)."""
    return Text("" if value is None else printable(str(value)))


def markup(value: object) -> str:
    """``value`` as one printable line with Rich markup escaped, for markup strings."""
    return escape(plain(value))
