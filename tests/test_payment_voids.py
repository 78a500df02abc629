"""Payments seen and corrected: list, void (by reference or a whole import), credit preview.

Through the command line, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main
from sync.config import Settings
from sync.reconcile import load_inputs
from tests.books import open_books
from tests.world import AS_OF, World

C1 = "11111111-1111-1111-1111-111111111111"
C2 = "22222222-2222-2222-2222-222222222222"
FILE = (
    "customer,date,amount,currency,reference,invoice\n"
    f"{C1},2026-11-01,1234.50,USD,PAY-1,G000000001\n"
    f"{C1},2026-11-02,0.10,USD,PAY-2,\n"
    f"{C2},2026-11-03,1000,JPY,PAY-3,\n"
)


class Books:
    """Two customers without charges, and the command line on their database."""

    def __init__(self, settings: Settings, sessions: Any, tmp: Path) -> None:
        self.settings, self.sessions, self.tmp = settings, sessions, tmp

    def run(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["--config", str(self.settings.source), *args])
        return code, out.getvalue()

    def json(self, *args: str) -> Any:
        code, out = self.run(*args, "--json")
        assert code == 0, out
        return json.loads(out)

    def payments(self, *args: str) -> list[dict[str, Any]]:
        return self.json("payments", "list", *args)["payments"]  # type: ignore[no-any-return]

    def import_file(self, text: str = FILE, name: str = "p.csv") -> str:
        path = self.tmp / name
        path.write_text(text)
        code, out = self.run("payments", "import", str(path))
        assert code == 0, out
        return out


@pytest.fixture
def books(write_config, migrated, tmp_path: Path) -> Books:  # type: ignore[no-untyped-def]
    customers = [
        (C1, "Contoso [/bold]", "contoso.onmicrosoft.com"),  # markup in a name stays text
        (C2, "Fabrikam", "fabrikam.onmicrosoft.com"),
    ]
    settings, sessions = open_books(write_config, migrated, customers)
    return Books(settings, sessions, tmp_path)


def _run_of(output: str) -> str:
    found = re.search(r"import run (\d+)", output)
    assert found, output
    return found.group(1)


def test_list_shows_each_payment_with_its_customer_import_run_and_exact_amount(books) -> None:  # type: ignore[no-untyped-def]
    run = _run_of(books.import_file())
    listed = books.payments()
    assert [(p["reference"], p["customer_name"], p["amount"], p["currency"]) for p in listed] == [
        ("PAY-1", "Contoso [/bold]", "1234.50", "USD"),
        ("PAY-2", "Contoso [/bold]", "0.10", "USD"),
        ("PAY-3", "Fabrikam", "1000", "JPY"),
    ]
    assert {p["import_run"] for p in listed} == {int(run)}
    assert listed[0]["invoice_id"] == "G000000001"
    assert not any(p["voided"] for p in listed)
    assert [p["reference"] for p in books.payments("--customer", C2)] == ["PAY-3"]
    assert books.payments("--import", str(int(run) + 1000)) == []
    code, table = books.run("payments", "list")
    assert code == 0
    assert "Contoso [/bold]" in table  # shown literally, not read as markup
    assert "1234.50" in table


def test_void_by_reference_keeps_the_payment_but_it_no_longer_counts(books) -> None:  # type: ignore[no-untyped-def]
    books.import_file()
    code, out = books.run("payments", "void", "PAY-1", "--reason", "wrong amount", "--by", "ana")
    assert code == 0, out
    assert "voided 1 payment(s) of 1 customer(s): 1234.50 USD" in out
    assert [p["reference"] for p in books.payments()] == ["PAY-2", "PAY-3"]
    voided = [p for p in books.payments("--include-voided") if p["voided"]]
    assert [(p["reference"], p["voided_by"], p["void_reason"]) for p in voided] == [
        ("PAY-1", "ana", "wrong amount")
    ]
    with books.sessions() as session:
        counted = load_inputs(session, books.settings, datetime(2026, 12, 1).date()).payments
    assert sorted(p.reference for p in counted) == ["PAY-2", "PAY-3"]
    code, table = books.run("payments", "list", "--include-voided")
    assert "by ana: wrong amount" in table


def test_voiding_is_audited_with_who_why_and_what(books) -> None:  # type: ignore[no-untyped-def]
    books.import_file()
    assert (
        books.run("payments", "void", "PAY-1", "PAY-3", "--reason", "[/] typo", "--by", "ana")[0]
        == 0
    )
    entries = [e for e in books.json("audit")["entries"] if e["event"] == "payments_voided"]
    assert [(e["customer_id"], e["actor"]) for e in entries] == [(C1, "ana"), (C2, "ana")]
    assert entries[0]["details"] == {
        "reason": "[/] typo",
        "currency": "USD",
        "amount": "1234.50",
        "payments": 1,
        "references": ["PAY-1"],
    }
    assert entries[1]["details"]["amount"] == "1000"
    code, table = books.run("audit")
    assert code == 0
    assert "payments_vo" in table  # the audit table stays whole with "[/]" in a reason


@pytest.mark.parametrize(
    ("references", "error"),
    [
        (["PAY-1", "NOPE"], "unknown payment reference(s): NOPE; nothing voided"),
        (["PAY-2", "PAY-1"], "already voided: PAY-1"),
    ],
)
def test_an_unknown_or_already_voided_reference_voids_nothing(  # type: ignore[no-untyped-def]
    books, capsys, references: list[str], error: str
) -> None:
    books.import_file()
    assert books.run("payments", "void", "PAY-1", "--reason", "first", "--by", "ana")[0] == 0
    before = books.payments("--include-voided"), books.json("audit")
    capsys.readouterr()
    code, _ = books.run("payments", "void", *references, "--reason", "again", "--by", "bo")
    assert code == 2
    message = capsys.readouterr().err
    assert error in message
    assert len(message.strip().splitlines()) == 1
    assert (books.payments("--include-voided"), books.json("audit")) == before


def test_importing_the_same_file_again_does_not_bring_a_voided_payment_back(books) -> None:  # type: ignore[no-untyped-def]
    books.import_file()
    assert books.run("payments", "void", "PAY-1", "--reason", "wrong", "--by", "ana")[0] == 0
    out = books.import_file()
    assert "imported 0 payment(s), 2 already imported" in out
    assert "1 row(s) match voided payments and stay voided" in out
    assert [p["reference"] for p in books.payments()] == ["PAY-2", "PAY-3"]
    corrected = f"customer,date,amount,currency,reference\n{C1},2026-11-01,123.45,USD,PAY-1b\n"
    assert "imported 1 payment(s)" in books.import_file(corrected, "fix.csv")
    assert [p["reference"] for p in books.payments()] == ["PAY-1b", "PAY-2", "PAY-3"]


def test_voiding_a_whole_import_leaves_the_other_imports(books) -> None:  # type: ignore[no-untyped-def]
    books.import_file()
    extra = f"customer,date,amount,currency,reference\n{C2},2026-11-05,5,JPY,PAY-9\n"
    run = _run_of(books.import_file(extra, "extra.csv"))
    code, out = books.run("payments", "void", "--import", run, "--reason", "wrong file")
    assert code == 0, out
    assert [p["reference"] for p in books.payments()] == ["PAY-1", "PAY-2", "PAY-3"]
    code, _ = books.run("payments", "void", "--import", run, "--reason", "again")
    assert code == 2


def test_void_needs_references_or_an_import_and_a_reason(books) -> None:  # type: ignore[no-untyped-def]
    books.import_file()
    assert books.run("payments", "void", "--reason", "why")[0] == 2
    assert books.run("payments", "void", "PAY-1")[0] == 2
    assert books.run("payments", "void", "PAY-1", "--reason", "  ")[0] == 2
    assert all(not p["voided"] for p in books.payments("--include-voided"))


# --- against the simulator's bill -----------------------------------------------------------


def _overpayment(world: World, factor: int) -> Path:
    """The never-paying customer pays its whole balance times ``factor``, dated on the plan date."""
    plan = world._json("reconcile", "--as-of", AS_OF, "--json")
    owed = [c for c in plan["customers"] if c["customer_id"] == world.never]
    rows = [
        f"{world.never},{AS_OF},{c['balance'] if factor == 1 else _times(c['balance'], factor)},"
        f"{c['currency']},FIX-{c['currency']}"
        for c in owed
    ]
    path = world.tmp / "wrong.csv"
    path.write_text("customer,date,amount,currency,reference\n" + "\n".join(rows) + "\n")
    return path


def _times(amount: str, factor: int) -> str:
    whole, _, decimals = amount.partition(".")
    return f"{int(whole) * factor}.{decimals}" if decimals else str(int(whole) * factor)


def test_voiding_a_whole_import_restores_the_plan_and_the_reconciliation(world: World) -> None:
    plan_before = world._json("collections", "plan", "--as-of", AS_OF, "--json")
    reconcile_before = world._json("reconcile", "--as-of", AS_OF, "--json")
    assert world.never in {
        f["customer_id"] for f in plan_before["flags"] if f["action"] == "suspend"
    }
    out = io.StringIO()
    with redirect_stdout(out):
        assert world.cli("payments", "import", str(_overpayment(world, 100))) == 0
    run = _run_of(out.getvalue())
    plan_paid = world._json("collections", "plan", "--as-of", AS_OF, "--json")
    assert plan_paid != plan_before
    assert world.never not in {
        f["customer_id"] for f in plan_paid["flags"] if f["action"] == "suspend"
    }
    assert world.cli("payments", "void", "--import", run, "--reason", "decimal comma") == 0
    assert world._json("collections", "plan", "--as-of", AS_OF, "--json") == plan_before
    assert world._json("reconcile", "--as-of", AS_OF, "--json") == reconcile_before


def test_a_dry_run_lists_the_payments_that_leave_a_customer_in_credit(world: World) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert world.cli("payments", "import", "--dry-run", str(_overpayment(world, 100))) == 0
    text = out.getvalue()
    assert "would leave 1 customer balance(s) in credit" in text
    assert world.never in text
    assert "FIX-" in text
    exact = io.StringIO()
    with redirect_stdout(exact):
        assert world.cli("payments", "import", "--dry-run", str(_overpayment(world, 1))) == 0
    assert "in credit" not in exact.getvalue()
