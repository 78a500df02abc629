"""A billing override must name a customer pcsync knows, or it changes nobody's charges.

``[billing.overrides."<customer id>"]`` with a mistyped id would leave the
customer it meant on the default markup, tax and payment terms: charged the
wrong amount, overdue on the wrong day. Reconciling refuses it, names the key,
and records nothing.
"""

from __future__ import annotations

import sqlalchemy as sa

from sync.cli import main
from sync.db.models import Run
from tests.books import C1, TWO_CUSTOMERS, open_books

TYPO = "11111111-1111-1111-1111-11111111111x"


def _runs(migrated: sa.Engine) -> int:
    with migrated.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(Run)).scalar_one())


def test_an_override_for_an_unknown_customer_is_refused(write_config, migrated, capsys) -> None:  # type: ignore[no-untyped-def]
    settings, _ = open_books(
        lambda **kw: write_config(f'\n[billing.overrides."{TYPO}"]\nmarkup_percent = "0"\n', **kw),
        migrated,
        TWO_CUSTOMERS,
    )
    code = main(["--config", str(settings.source), "reconcile", "--as-of", "2026-11-30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert f'[billing.overrides."{TYPO}"]' in err[0]
    assert _runs(migrated) == 0


def test_an_override_for_a_known_customer_in_any_case_is_taken(
    write_config, migrated, capsys
) -> None:  # type: ignore[no-untyped-def]
    settings, _ = open_books(
        lambda **kw: write_config(
            f'\n[billing.overrides."{C1.upper()}"]\nmarkup_percent = "0"\n', **kw
        ),
        migrated,
        TWO_CUSTOMERS,
    )
    code = main(["--config", str(settings.source), "reconcile", "--as-of", "2026-11-30"])
    assert code == 0, capsys.readouterr().err
