"""The demo's data, on SQLite and PostgreSQL: every statement has the reconciliation's figures.

``pcsync demo`` keeps its database in SQLite; here the same story — the simulator on the
demo's day, a full sync, the sample payments imported — goes into each test database
through the CLI, and every customer with a balance gets a statement equal to
``reconcile --json`` for that customer and date.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main
from sync.cli.demo import DEMO_SECRET_ENV, _demo_config, demo_day

DEMO_DAY = demo_day(date(2026, 12, 1))  # the README's demo: 2026-11-30


def test_every_demo_statement_equals_the_reconciliation(
    start_simulator: Any,
    db_url: str,
    migrated: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = start_simulator(anchor=DEMO_DAY)
    monkeypatch.setenv(DEMO_SECRET_ENV, sim.config.client_secret)
    monkeypatch.chdir(tmp_path)  # the demo config's relative paths (token cache, notices)
    text = _demo_config(sim, sim.base_url)
    assert 'url = "sqlite:///pcsync.db"' in text
    config = tmp_path / "pcsync.toml"
    config.write_text(text.replace("sqlite:///pcsync.db", db_url), encoding="utf-8")
    payments = tmp_path / "sample-payments.csv"
    payments.write_text(sim.data.payments_csv(), encoding="utf-8")
    as_of = DEMO_DAY.isoformat()

    def cli(*args: str) -> str:
        capsys.readouterr()
        assert main(["--config", str(config), *args]) == 0, args
        return capsys.readouterr().out

    cli("sync")
    cli("payments", "import", str(payments))
    customers = json.loads(cli("reconcile", "--as-of", as_of, "--json"))["customers"]
    owing = [row for row in customers if Decimal(row["balance"]) != 0]
    assert len(owing) >= 5  # the demo's overdue customers at least
    out = tmp_path / "statements"
    cli("statement", "--all", "--as-of", as_of, "--format", "json", "--out", str(out))
    for row in owing:
        stem = f"statement-{row['customer_id']}-{row['currency']}-{as_of}"
        document = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        for key in ("balance", "overdue_amount", "days_overdue", "aging", "charged", "paid"):
            assert document[key] == row[key], (row["customer_id"], key)
        assert document["credit"] == row["unapplied_credit"], row["customer_id"]
        assert document["charged_net"] == row["charged_net"], row["customer_id"]
    assert len(list(out.glob("*.json"))) == len(owing)
