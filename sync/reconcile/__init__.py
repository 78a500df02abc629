"""``pcsync reconcile``: load the inputs from the database, run the pure rules, store the result.

* :mod:`sync.reconcile.inputs` — every input of the rules, as plain records;
* :mod:`sync.reconcile.candidates` — the lines that can raise a finding;
* :mod:`sync.reconcile.rows` — rows as the driver returns them;
* :mod:`sync.reconcile.run` — the run: reconcile and store findings and balances.
"""

from __future__ import annotations

from reconciliation.checks import LineFact
from sync.reconcile.candidates import USAGE_COLUMNS, usage_fields
from sync.reconcile.inputs import billing_terms, customer_charges, load_inputs
from sync.reconcile.rows import money
from sync.reconcile.run import run_reconciliation, to_json

__all__ = [
    "USAGE_COLUMNS",
    "LineFact",
    "billing_terms",
    "customer_charges",
    "load_inputs",
    "money",
    "run_reconciliation",
    "to_json",
    "usage_fields",
]

_terms = billing_terms  # the name ``sync.statement`` imports
