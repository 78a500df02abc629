"""Benchmark: reconcile 1M line items and 100k payments from SQLite, beside DuckDB.

    .venv/bin/python bench/reconcile_scale.py [--lines 1000000] [--payments 100000] [--repeat 3]

Builds a pcsync SQLite database (2,000 customers, 12 months × 2 currencies of
invoices, the given numbers of line items and payments), then, each in a fresh
process reporting its own peak RSS:

* ``pcsync``: ``run_reconciliation`` — load (the per-invoice line sums the
  sync keeps, the lines that can raise a finding, payments), charges, payment
  application, aging, exposure, bill checks, store the run;
* ``duckdb``: read the same rows from the same file and compute the same
  per-customer totals (cost and payments per customer and currency) in DuckDB.

Each runs ``--repeat`` times, alternating; the fastest run of each is compared.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.connector_stream import _peak_rss_mb  # noqa: E402

if TYPE_CHECKING:
    from connectors.partner_center import LineItem

CUSTOMERS = 2000
AS_OF = date(2026, 11, 25)


def build(path: Path, lines: int, payments: int) -> None:
    from sync.db.engine import make_engine
    from sync.db.migrate import upgrade

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    db = sqlite3.connect(path)
    customers = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(CUSTOMERS)]
    currency = {c: ("EUR" if n % 3 == 0 else "USD") for n, c in enumerate(customers)}
    db.executemany(
        "INSERT INTO customers (id, name, domain, relationship, raw, content_hash, first_seen_at,"
        " synced_at) VALUES (?, ?, ?, 'reseller', '{}', 'h', ?, ?)",
        [(c, f"Customer {n}", f"c{n}.onmicrosoft.com", now, now) for n, c in enumerate(customers)],
    )
    db.executemany(
        "INSERT INTO subscriptions (id, customer_id, quantity, billing_type, billing_cycle, status,"
        " suspension_reasons, raw, content_hash, first_seen_at, synced_at)"
        " VALUES (?, ?, 1, 'usage', 'monthly', 'active', '[]', '{}', 'h', ?, ?)",
        [(f"s-{c}", c, now, now) for c in customers],
    )
    invoices = []
    for month in range(12):
        day = date(2025, 12, 5) + timedelta(days=30 * month)
        for cur in ("USD", "EUR"):
            invoices.append((f"G{month:02d}{cur}", day, cur))
    # The lines go in as a sync stores them: read as Microsoft sends them, written by
    # replace_lines (typed columns, extra, sums), so the bench follows the product's schema.
    db.commit()  # the lines are written on a connection of their own
    totals = _write_lines(path, lines, invoices, customers, currency, rng)
    db.executemany(
        "INSERT INTO invoices (id, invoice_date, total_charges, paid_amount, currency, raw,"
        " content_hash, first_seen_at, synced_at) VALUES (?, ?, ?, '0', ?, '{}', 'h', ?, ?)",
        [(i, d.isoformat(), str(totals.get(i, 0)), cur, now, now) for i, d, cur in invoices],
    )
    db.execute(
        "INSERT INTO payment_imports (file_name, file_sha256, imported_at, rows_read,"
        " rows_imported, rows_unchanged, rows_rejected) VALUES ('bench', 'x', ?, 0, 0, 0, 0)",
        (now,),
    )
    db.executemany(
        "INSERT INTO payments (reference, customer_id, payment_date, amount, currency,"
        " content_hash, import_id, source_row) VALUES (?, ?, ?, ?, ?, 'h', 1, ?)",
        [
            (
                f"P{n}",
                c := customers[rng.randrange(CUSTOMERS)],
                (date(2025, 12, 20) + timedelta(days=rng.randrange(330))).isoformat(),
                f"{rng.randint(100, 500000) / 100:.2f}",
                currency[c],
                n + 2,
            )
            for n in range(payments)
        ],
    )
    db.commit()
    db.close()


def rebuild_sums(path: Path) -> float:
    """Give the lines their per-invoice sums, as a sync stores them with the lines; seconds."""
    from sync.db.engine import make_engine, make_session_factory
    from sync.lines import rebuild_line_sums

    engine = make_engine(f"sqlite:///{path}")
    started = time.perf_counter()
    with make_session_factory(engine).begin() as session:
        rebuild_line_sums(session)
    engine.dispose()
    return time.perf_counter() - started


def _write_lines(
    path: Path,
    lines: int,
    invoices: list[tuple[str, date, str]],
    customers: list[str],
    currency: dict[str, str],
    rng: random.Random,
) -> dict[str, Decimal]:
    """Store ``lines`` one-time lines through ``replace_lines``; each invoice's total."""
    from connectors.partner_center import Provider, read_line
    from sync.db.engine import make_engine, make_session_factory
    from sync.lines import replace_lines
    from sync.runtime.runs import RunRecorder

    def invoice_lines(month: int, cur: str) -> Iterator[LineItem]:
        # Line n bills customer n % CUSTOMERS in month (n // CUSTOMERS) % 12, in its currency.
        for block in range(month, -(-lines // CUSTOMERS), 12):
            for n in range(block * CUSTOMERS, min(lines, (block + 1) * CUSTOMERS)):
                customer = customers[n % CUSTOMERS]
                if currency[customer] != cur:
                    continue
                subtotal = f"{rng.randint(100, 99999) / 100:.2f}"
                raw = {
                    "orderId": f"O{n}",
                    "customerId": customer,
                    "subscriptionId": f"s-{customer}",
                    "chargeType": "usage",
                    "subtotal": subtotal,
                    "taxTotal": "0",
                    "totalForCustomer": subtotal,
                    "currency": cur,
                }
                yield read_line(raw, invoice_id, Provider.ONE_TIME, "v2")

    engine = make_engine(f"sqlite:///{path}")
    totals: dict[str, Decimal] = {}
    with make_session_factory(engine).begin() as session:
        for number, (invoice_id, _day, cur) in enumerate(invoices):
            by_currency: dict[str, Decimal] = {}
            replace_lines(
                session,
                invoice_id,
                Provider.ONE_TIME.value,
                invoice_lines(number // 2, cur),
                RunRecorder(run_id=0),
                by_currency,
            )
            totals[invoice_id] = by_currency.get(cur, Decimal(0))
    engine.dispose()
    return totals


def run_pcsync(path: Path) -> dict[str, object]:
    from sync.config import load_settings
    from sync.db.engine import make_engine, make_session_factory
    from sync.reconcile import run_reconciliation

    config = path.with_suffix(".toml")
    config.write_text(
        '[partner_center]\ntenant_id = "t"\nclient_id = "c"\n'
        f'[database]\nurl = "sqlite:///{path}"\n'
    )
    settings = load_settings(config, {})
    engine = make_engine(settings.database.url)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    result = run_reconciliation(settings, sessions, AS_OF)
    seconds = time.perf_counter() - started
    charged = sum(ledger.charged for ledger in result.ledgers)
    return {
        "mode": "pcsync",
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "customers": len(result.ledgers),
        "check": str(charged),
    }


def run_duckdb(path: Path) -> dict[str, object]:
    import duckdb

    started = time.perf_counter()
    db = sqlite3.connect(path)
    lines = db.execute(
        "SELECT customer_id, invoice_id, currency, subtotal FROM invoice_line_items"
    ).fetchall()
    payments = db.execute("SELECT customer_id, currency, amount FROM payments").fetchall()
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE lines (customer_id VARCHAR, invoice_id VARCHAR, currency VARCHAR,"
        " subtotal DECIMAL(38, 10))"
    )
    import pandas as pd

    frame = pd.DataFrame(lines, columns=["customer_id", "invoice_id", "currency", "subtotal"])
    con.register("frame", frame)
    con.execute(
        "INSERT INTO lines SELECT customer_id, invoice_id, currency,"
        " CAST(subtotal AS DECIMAL(38, 10)) FROM frame"
    )
    pays = pd.DataFrame(payments, columns=["customer_id", "currency", "amount"])
    con.register("pays", pays)
    charged = con.execute(
        "SELECT sum(cost) FROM (SELECT customer_id, invoice_id, currency, sum(subtotal) AS cost"
        " FROM lines GROUP BY ALL)"
    ).fetchone()
    con.execute(
        "SELECT customer_id, currency, sum(CAST(amount AS DECIMAL(38, 10))) FROM pays GROUP BY ALL"
    ).fetchall()
    seconds = time.perf_counter() - started
    return {
        "mode": "duckdb",
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "check": str(charged[0] if charged else None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each, alternating; the fastest counts"
    )
    parser.add_argument("--run", nargs=2, metavar=("MODE", "DB"))
    parser.add_argument("--build", nargs=3, metavar=("DB", "LINES", "PAYMENTS"))
    args = parser.parse_args()
    if args.build:
        db, lines, payments = Path(args.build[0]), int(args.build[1]), int(args.build[2])
        started = time.perf_counter()
        build(db, lines, payments)
        print(f"built {lines} lines, {payments} payments in {time.perf_counter() - started:.1f}s")
        print(
            f"line sums computed from all {lines} lines in {rebuild_sums(db):.1f}s "
            "(a sync keeps them as it stores the lines; reconcile reads them)",
            flush=True,
        )
        return
    if args.run:
        mode, db = args.run
        print(json.dumps(run_pcsync(Path(db)) if mode == "pcsync" else run_duckdb(Path(db))))
        return
    folder = Path(tempfile.mkdtemp(prefix="pcsync-bench-"))
    try:
        compare(folder / "reconcile.db", args.lines, args.payments, args.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # a million lines leave gigabytes


def compare(path: Path, lines: int, payments: int, repeat: int) -> None:
    """Build the database, then time both sides ``repeat`` times; print the fastest of each."""
    # Built in a child process too: a child's peak RSS starts from its parent's.
    subprocess.run(
        [sys.executable, __file__, "--build", str(path), str(lines), str(payments)],
        check=True,
    )
    # The machine is shared: each runs several times, alternating, and its fastest run counts.
    results: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for mode in ("duckdb", "pcsync"):
            out = subprocess.run(
                [sys.executable, __file__, "--run", mode, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.splitlines()[-1])
            print(json.dumps(result), flush=True)
            if mode not in results or result["seconds"] < results[mode]["seconds"]:
                results[mode] = result
    ratio = results["pcsync"]["seconds"] / results["duckdb"]["seconds"]
    print(
        f"fastest of {repeat}: pcsync {results['pcsync']['seconds']} s, duckdb "
        f"{results['duckdb']['seconds']} s; pcsync / duckdb time = {ratio:.2f}; "
        f"pcsync peak RSS {results['pcsync']['peak_rss_mb']} MB"
    )


if __name__ == "__main__":
    main()
