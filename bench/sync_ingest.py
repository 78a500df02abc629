"""Benchmark: full sync of simulator line items into SQLite and PostgreSQL, beside a bare baseline.

    .venv/bin/python bench/sync_ingest.py [--sizes 100000,1000000] [--postgres URL]

For each size a simulator (its own process) serves one invoice of that many
lines. In fresh processes, each reporting its own peak RSS:

* ``baseline``: download the same export blobs with plain ``requests``, parse
  each line with ``json``, insert with plain ``sqlite3`` ``executemany``;
* ``pcsync-sqlite`` / ``pcsync-postgres``: ``run_sync`` (invoices + line items),
  then a second, no-change sync whose time is reported beside the first.

Each client runs ``--repeat`` times (3), alternating, each into a new database;
the fastest run of each is compared: the machine is shared, and a noisy spell
should not decide a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.connector_stream import _peak_rss_mb, simulator  # noqa: E402


def _simulator_identity() -> dict[str, str]:
    """The simulator's tenant, app and secret, handed to the clients in their environment.

    The clients must not import the simulator themselves: its modules (TLS
    certificate generation, the data generator) would count in their peak RSS.
    """
    from connectors.simulator.server import SimulatorConfig

    defaults = SimulatorConfig()
    return {
        "BENCH_TENANT_ID": defaults.tenant_id,
        "BENCH_CLIENT_ID": defaults.client_id,
        "PCSYNC_CLIENT_SECRET": defaults.client_secret,
    }


def _config(base: str, state: str, url: str) -> Path:
    path = Path(state) / f"pcsync-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(
        f"""[partner_center]
tenant_id = "{os.environ["BENCH_TENANT_ID"]}"
client_id = "{os.environ["BENCH_CLIENT_ID"]}"
authority_host = "{base}"
api_base_url = "{base}"
graph_base_url = "{base}"
token_cache_path = "token-cache.json"
requests_per_minute = 600000

[database]
url = "{url}"
"""
    )
    return path


def pcsync_client(base: str, state: str, url: str) -> dict[str, object]:
    from sync.config import load_settings
    from sync.db.engine import make_engine, make_session_factory
    from sync.jobs import SyncOptions, run_sync

    settings = load_settings(_config(base, state, url))
    engine = make_engine(settings.database.url)
    sessions = make_session_factory(engine)
    only = ("invoices", "lineitems")
    started = time.perf_counter()
    run_sync(settings, engine, sessions, SyncOptions(only=only))
    full = time.perf_counter() - started
    started = time.perf_counter()
    run_sync(settings, engine, sessions, SyncOptions(only=only))
    again = time.perf_counter() - started
    with engine.connect() as connection:
        from sqlalchemy import text

        count = connection.execute(text("SELECT count(*) FROM invoice_line_items")).scalar()
    return {
        "lines": count,
        "seconds": round(full, 2),
        "resync_seconds": round(again, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def baseline_client(base: str, state: str, invoice: str) -> dict[str, object]:
    import requests

    from connectors.partner_center import ClientOptions, Credentials, Endpoints, PartnerCenter

    env = os.environ
    pc = PartnerCenter.connect(
        Credentials(env["BENCH_TENANT_ID"], env["BENCH_CLIENT_ID"], env["PCSYNC_CLIENT_SECRET"]),
        Endpoints(authority_host=base, api_base_url=base, graph_base_url=base),
        ClientOptions(token_cache_path=Path(state) / "baseline-cache.json"),
    )
    database = sqlite3.connect(Path(state) / f"baseline-{uuid.uuid4().hex[:6]}.db")
    database.execute(
        "CREATE TABLE lines (invoice_id TEXT, customer_id TEXT, subscription_id TEXT, "
        "product_id TEXT, charge_type TEXT, quantity TEXT, subtotal TEXT, tax_total TEXT, "
        "total TEXT, currency TEXT, charge_start TEXT, charge_end TEXT, raw TEXT)"
    )
    started = time.perf_counter()
    manifest = pc.exports.wait(pc.exports.request_billed(invoice))
    session = requests.Session()
    count = 0
    for blob in manifest.blobs:
        response = session.get(manifest.blob_url(blob), stream=True, timeout=60)
        batch = []
        for raw in gzip.GzipFile(fileobj=response.raw):
            row = json.loads(raw, parse_float=Decimal)
            batch.append(
                (
                    invoice,
                    row["CustomerId"],
                    row["SubscriptionId"],
                    row["ProductId"],
                    row["ChargeType"],
                    str(row["Quantity"]),
                    str(row["Subtotal"]),
                    str(row["TaxTotal"]),
                    str(row["TotalForCustomer"]),
                    row["Currency"],
                    row["ChargeStartDate"],
                    row["ChargeEndDate"],
                    raw.decode(),
                )
            )
            if len(batch) >= 5000:
                database.executemany("INSERT INTO lines VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
                count += len(batch)
                batch = []
        database.executemany("INSERT INTO lines VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        count += len(batch)
    database.commit()
    seconds = time.perf_counter() - started
    return {
        "lines": count,
        "seconds": round(seconds, 2),
        "resync_seconds": None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


@contextmanager
def _schema(postgres: str) -> Iterator[str]:
    """A URL for a new PostgreSQL schema, dropped after."""
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in postgres else "?"
    try:
        yield f"{postgres}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _migrate(url: str) -> None:
    from sync.db.engine import make_engine
    from sync.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def _client_run(
    mode: str,
    size: int,
    attempt: int,
    state: str,
    base: str,
    invoice: str,
    env: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One client in a fresh process, into a database of its own (removed after)."""
    with contextlib.ExitStack() as cleanup:
        if mode == "baseline":
            arg = invoice
        elif mode == "pcsync-sqlite":
            path = Path(state) / f"pcsync-{attempt}.db"
            arg = f"sqlite:///{path}"
            for suffix in ("", "-wal", "-shm"):
                cleanup.callback(Path(f"{path}{suffix}").unlink, missing_ok=True)
        else:
            arg = cleanup.enter_context(_schema(args.postgres))
        if mode != "baseline":
            _migrate(arg)  # in this process: the client measures a sync, not a migration
        out = subprocess.run(
            [sys.executable, __file__, "--client", mode, base, state, arg],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return {"size": size, "mode": mode, **json.loads(out.stdout.splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "PCSYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--modes",
        default="baseline,pcsync-sqlite,pcsync-postgres",
        help="which clients to run (baseline is needed for the ratios)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each client; the fastest is compared"
    )
    parser.add_argument("--client", nargs=4, metavar=("MODE", "BASE", "STATE", "ARG"))
    args = parser.parse_args()
    if args.client:
        mode, base, state, arg = args.client
        result = (
            baseline_client(base, state, arg)
            if mode == "baseline"
            else pcsync_client(base, state, arg)
        )
        print(json.dumps(result))
        return
    results = []
    modes = [
        m for m in ("baseline", "pcsync-sqlite", "pcsync-postgres") if m in args.modes.split(",")
    ]
    for size in (int(s) for s in args.sizes.split(",")):
        with simulator(size) as (state, base, ca, invoice):
            env = {**os.environ, "REQUESTS_CA_BUNDLE": ca, **_simulator_identity()}
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
            # Alternating, so that a noisy spell on the shared machine hits every client.
            for attempt in range(args.repeat):
                for mode in modes:
                    result = _client_run(mode, size, attempt, state, base, invoice, env, args)
                    runs[mode].append(result)
                    print(json.dumps(result), flush=True)
            for done in runs.values():
                best = min(done, key=lambda r: r["seconds"])
                results.append({**best, "all_seconds": [r["seconds"] for r in done]})
    print()
    header = ("lines", "mode", "lines/s", "peak RSS MB", "seconds", "resync s", "all runs s")
    print("{:>9} {:>16} {:>9} {:>12} {:>8} {:>9}  {}".format(*header))
    for r in results:
        rate = int(r["lines"] / r["seconds"]) if r["seconds"] else 0
        print(
            f"{r['lines']:>9} {r['mode']:>16} {rate:>9} {r['peak_rss_mb']:>12} "
            f"{r['seconds']:>8} {r['resync_seconds']!s:>9}  {r['all_seconds']}"
        )
    by = {(r["size"], r["mode"]): r for r in results}
    for size in sorted({r["size"] for r in results}):
        if (size, "baseline") not in by:
            continue
        base_time = by[(size, "baseline")]["seconds"]
        for mode in ("pcsync-sqlite", "pcsync-postgres"):
            if (size, mode) not in by:
                continue
            r = by[(size, mode)]
            print(
                f"{size} lines, {mode}: time / baseline = {r['seconds'] / base_time:.2f}; "
                f"no-change resync = {100 * r['resync_seconds'] / r['seconds']:.2f}% of full"
            )


if __name__ == "__main__":
    main()
