"""Customer payments: import a payment file, see what is stored, void what is wrong.

* :mod:`sync.payments.importing` — ``pcsync payments import`` (and ``--dry-run``):
  a file into the database, all or nothing, in bounded memory;
* :mod:`sync.payments.dryrun` — ``--dry-run``: what the import would do, found in memory
  (:mod:`sync.payments.scan` reads the file by column, :mod:`sync.payments.references`
  compares references by 64-bit hashes confirmed as text), nothing staged;
* :mod:`sync.payments.staging` — the staging table the import checks a file in;
* :mod:`sync.payments.storing` — the new payments from there into ``payments``, at once;
* :mod:`sync.payments.digest` — the content hash that makes a reimport the same payment;
* :mod:`sync.payments.credit` — the customers an import would leave in credit;
* :mod:`sync.payments.rejects` — ``<file>.rejected.csv`` of ``--skip-bad-rows``;
* :mod:`sync.payments.records` — ``pcsync payments list`` and ``payments void``.
"""

from __future__ import annotations

from sync.payments.credit import CreditPayment, InCredit
from sync.payments.digest import payment_digest
from sync.payments.importing import ImportResult, count_payments, import_payments
from sync.payments.records import PaymentView, VoidResult, list_payments, void_payments

__all__ = [
    "CreditPayment",
    "ImportResult",
    "InCredit",
    "PaymentView",
    "VoidResult",
    "count_payments",
    "import_payments",
    "list_payments",
    "payment_digest",
    "void_payments",
]
