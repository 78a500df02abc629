"""Customer statements: ``pcsync statement``.

The figures come from the same charges and payments the reconciliation uses
(:mod:`.load`), so a statement's balance, overdue amount and aging are the
reconciliation's; :mod:`.render` writes HTML, CSV and JSON; :mod:`.write` puts the
files in place, nothing half-written.
"""

from sync.statement.load import build_statements
from sync.statement.render import FORMATS, render_csv, render_html, render_json
from sync.statement.write import StatementRun, write_statements

__all__ = [
    "FORMATS",
    "StatementRun",
    "build_statements",
    "render_csv",
    "render_html",
    "render_json",
    "write_statements",
]
