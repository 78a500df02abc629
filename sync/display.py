"""Text from Partner Center and from operators, made safe for the terminal.

Customer and product names, domains, invoice ids, approval notes and ``--by``
names are printed by the command line. On their way out they lose escape
sequences and control characters (which would move the cursor, clear the
screen or retitle the window), and in Rich tables they are plain text, never
markup: a note holding ``[/]`` would otherwise break the whole table.

Tables are never cut: on a terminal long values wrap (and fold where there is no
space to break at); into a pipe or a file every row is one line of plain aligned
text, every count and error whole, so ``pcsync runs | grep`` finds them.
"""

from __future__ import annotations

import io
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from reconciliation.text import one_line, printable

__all__ = ["cell", "customer_cell", "markup", "plain", "print_table"]


def plain(value: object) -> str:
    """``value`` as one printable line, for ``click.echo`` (which interprets no markup)."""
    return one_line(str(value))


def cell(value: object | None) -> Text:
    """A Rich table cell showing ``value`` literally (no markup, no emoji codes)."""
    return Text("" if value is None else printable(str(value)))


def markup(value: object) -> str:
    """``value`` as one printable line with Rich markup escaped, for markup strings."""
    return escape(plain(value))


def customer_cell(customer_id: str | None, names: dict[str, str]) -> Text:
    """A customer's name beside its tenant id (the id alone when the name is unknown)."""
    if not customer_id:
        return cell(None)
    name = names.get(customer_id)
    return cell(f"{name} ({customer_id})" if name else customer_id)


def print_table(table: Table) -> None:
    """Print ``table`` on stdout, never truncating a value (see the module docstring)."""
    for column in table.columns:
        column.overflow = "fold"
    if sys.stdout.isatty():
        Console().print(table)
        return
    table.box = None
    table.show_edge = False
    out = io.StringIO()
    Console(file=out, width=1_000_000, no_color=True, highlight=False, emoji=False).print(table)
    click.echo("\n".join(line.rstrip() for line in out.getvalue().splitlines()))
