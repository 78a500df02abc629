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


def pcsync_client(base: str, state: str, url: str, api: str) -> dict[str, object]:
    from sqlalchemy import text

    from sync.config import load_settings
    from sync.db.engine import make_engine, make_session_factory
    from sync.jobs import SyncOptions, run_sync

    config = _config(base, state, url)
    config.write_text(
        config.read_text().replace(
            "requests_per_minute", f'line_items_api = "{api}"\nrequests_per_minute'
        )
    )
    settings = load_settings(config)
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
        count = connection.execute(text("SELECT count(*) FROM invoice_line_items")).scalar()
        requests = list(connection.execute(text("SELECT requests FROM runs ORDER BY id")).scalars())
    return {
        "lines": count,
        "seconds": round(full, 2),
        "resync_seconds": round(again, 3),
        "requests": requests,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _documented_keys(api: str) -> list[str]:
    """Every documented line field, spelled as the API sends it (camelCase v1, PascalCase v2)."""
    from connectors.partner_center.line_fields import FIELDS, SHARED

    fields = (*SHARED, *FIELDS)
    if api == "v2":
        return [
            ("PC" + f.key[2:] if f.key.startswith("pcTo") else f.key[:1].upper() + f.key[1:])
            for f in fields
            if f.key not in ("attributes", "invoiceLineItemType", "billingProvider")
        ]
    return [f.key for f in fields]


def _money_keys() -> set[str]:
    from connectors.partner_center.line_fields import FIELDS, SHARED, Kind

    return {f.key.lower() for f in (*SHARED, *FIELDS) if f.kind is Kind.MONEY}


def _baseline_rows(api: str, pc: Any, invoice: str, base: str) -> Iterator[list[Any]]:
    """Every line of the invoice as a list of its documented fields, as a plain script reads it."""
    import requests

    keys = _documented_keys(api)
    as_text = [isinstance(k, str) for k in keys]
    session = requests.Session()

    def values(row: dict[str, Any]) -> list[Any]:
        out = [invoice]
        for key in keys:
            value = row.get(key)
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            elif value is not None and not isinstance(value, str):
                value = str(value)
            out.append(value)
        return out

    del as_text
    if api == "v2":
        manifest = pc.exports.wait(pc.exports.request_billed(invoice))
        for blob in manifest.blobs:
            response = session.get(manifest.blob_url(blob), stream=True, timeout=60)
            for raw in gzip.GzipFile(fileobj=response.raw):
                yield values(json.loads(raw, parse_float=Decimal))
        return
    token = pc.http._tokens.token(pc._scope)
    headers = {"Authorization": f"Bearer {token}"}
    url = (
        f"{base}/v1/invoices/{invoice}/lineitems?provider=onetime"
        "&invoicelineitemtype=billinglineitems&size=2000"
    )
    while url:
        body = session.get(url, headers=headers, timeout=60).json(parse_float=Decimal)
        for row in body.get("items", []):
            yield values(row)
        link = (body.get("links") or {}).get("next")
        if not link:
            break
        uri = link["uri"]
        url = uri if uri.startswith("http") else f"{base}/v1/{uri.removeprefix('/v1/').lstrip('/')}"
        if "seekoperation=" not in url.lower():
            url += "&seekOperation=Next"
        headers = {
            "Authorization": f"Bearer {token}",
            **{h["key"]: h["value"] for h in link.get("headers", [])},
        }


def baseline_client(base: str, state: str, arg: str, api: str, db: str) -> dict[str, object]:
    """requests + gzip + json, every documented field a column: sqlite3 executemany or COPY."""
    from connectors.partner_center import ClientOptions, Credentials, Endpoints, PartnerCenter

    invoice, _, url = arg.partition("|")
    env = os.environ
    pc = PartnerCenter.connect(
        Credentials(env["BENCH_TENANT_ID"], env["BENCH_CLIENT_ID"], env["PCSYNC_CLIENT_SECRET"]),
        Endpoints(authority_host=base, api_base_url=base, graph_base_url=base),
        ClientOptions(token_cache_path=Path(state) / "baseline-cache.json"),
    )
    keys = _documented_keys(api)
    money = _money_keys()
    names = ["invoice_id", *(f"c_{k.lower()}" for k in keys)]
    started = time.perf_counter()
    count = 0
    rows = _baseline_rows(api, pc, invoice, base)
    if db == "sqlite":
        path = Path(state) / f"baseline-{uuid.uuid4().hex[:6]}.db"
        database = sqlite3.connect(path)
        database.execute(f"CREATE TABLE lines ({', '.join(f'{n} TEXT' for n in names)})")
        insert = f"INSERT INTO lines VALUES ({', '.join('?' for _ in names)})"  # noqa: S608
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                database.executemany(insert, batch)
                count += len(batch)
                batch = []
        database.executemany(insert, batch)
        count += len(batch)
        database.commit()
        database.close()
    else:
        import psycopg

        types = ["text", *("numeric" if k.lower() in money else "text" for k in keys)]
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
            columns = ", ".join(f"{n} {t}" for n, t in zip(names, types, strict=True))
            connection.execute(f"CREATE TABLE lines ({columns})")
            with connection.cursor().copy(f"COPY lines ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
    seconds = time.perf_counter() - started
    if db == "sqlite":
        path.unlink()  # after the clock: a million lines are ~700 MB
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
        if mode == "baseline-sqlite":
            arg = invoice
        elif mode == "baseline-postgres":
            arg = f"{invoice}|{cleanup.enter_context(_schema(args.postgres))}"
        elif mode == "pcsync-sqlite":
            path = Path(state) / f"pcsync-{attempt}.db"
            arg = f"sqlite:///{path}"
            for suffix in ("", "-wal", "-shm"):
                cleanup.callback(Path(f"{path}{suffix}").unlink, missing_ok=True)
        else:
            arg = cleanup.enter_context(_schema(args.postgres))
        if not mode.startswith("baseline"):
            _migrate(arg)  # in this process: the client measures a sync, not a migration
        out = subprocess.run(
            [sys.executable, __file__, "--client", mode, base, state, arg, args.api],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.splitlines()[-1])
        return {"size": size, "mode": mode, "api": args.api, **result}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "PCSYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--api", choices=("v1", "v2"), default="v2", help="the line items API")
    parser.add_argument(
        "--modes",
        default="baseline-sqlite,pcsync-sqlite,baseline-postgres,pcsync-postgres",
        help="which clients to run (baseline is needed for the ratios)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each client; the fastest is compared"
    )
    parser.add_argument("--client", nargs=5, metavar=("MODE", "BASE", "STATE", "ARG", "API"))
    args = parser.parse_args()
    if args.client:
        mode, base, state, arg, api = args.client
        result = (
            baseline_client(base, state, arg, api, mode.split("-")[1])
            if mode.startswith("baseline")
            else pcsync_client(base, state, arg, api)
        )
        print(json.dumps(result))
        return
    results = []
    modes = args.modes.split(",")
    print(f"started {_now()} UTC, load {os.getloadavg()}")
    for size in (int(s) for s in args.sizes.split(",")):
        with simulator(size, args.api) as (state, base, ca, invoice):
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
    print(f"\nended {_now()} UTC, load {os.getloadavg()}")
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
        for db in ("sqlite", "postgres"):
            if (size, f"baseline-{db}") not in by or (size, f"pcsync-{db}") not in by:
                continue
            base_time = by[(size, f"baseline-{db}")]["seconds"]
            r = by[(size, f"pcsync-{db}")]
            full, again = r["requests"][-2:] if len(r["requests"]) >= 2 else (0, 0)
            print(
                f"{size} lines, {args.api}, {db}: time / baseline = {r['seconds'] / base_time:.2f};"
                f" no-change resync = {100 * r['resync_seconds'] / r['seconds']:.2f}% of the"
                f" time, {again} of {full} requests"
            )


if __name__ == "__main__":
    main()
