"""Benchmark: ``pcsync payments import`` (and ``--dry-run``) of a large CSV; time and peak RSS.

    .venv/bin/python bench/payments_import.py [--rows 1000000] [--database sqlite]
        [--baseline COMMIT] [--codes baseline,now] [--modes import,dry-run]

A payments CSV of ``--rows`` rows (about 73 bytes a row: 769k rows make a
56 MB file, the size of issue 17's) is written for 1,000 known customers, half named by
tenant id and half by primary domain, in USD, EUR and JPY. Each mode then
runs the real command line (``sync.cli.main``) in a fresh process of its own
against a fresh database holding just those customers, and reports its wall
time and its own peak RSS (``VmHWM``).

The baseline is the code of ``--baseline`` (by default the commit before the
import streamed), taken with ``git archive`` into a temporary folder and put
first on the child's ``sys.path``; "now" is this working tree. Both read the
same file into the same kind of database.

Baseline measured before the change (commit d00e585, SQLite, the 2-core
development machine): the 769k-row / 56 MB file imported in 84 s with a peak
RSS of 3.0 GB (dry run 10.2 s, 1.1 GB); 1M rows / 73 MB in 114 s, 3.8 GB
(dry run 16.6 s, 1.4 GB); into PostgreSQL 1M rows in 175 s, 4.0 GB (dry run
14.7 s, 1.4 GB).

In one run on 2026-12-04 on the idle machine (baseline d00e585 against adef854,
1M rows, SQLite): import 125.6 s / 3.8 GB against 10.6 s / 286 MB (11.9x), dry
run 15.1 s / 1.4 GB against 7.1 s / 252 MB (2.1x). On 2026-12-05, after the dry
run stopped staging rows (c154308), two runs under load 2.7-3: import 132.7 s and
134.8 s against 10.3 s and 11.7 s (12.8x, 11.6x; 277-278 MB), dry run 15.0 s and
19.3 s against 1.14 s and 1.22 s (13.2x, 15.8x; 264-266 MB); see
docs/performance.md. ``--modes dry-run`` measures the dry runs alone (20 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "d00e585"
CUSTOMERS = 1000
POSTGRES_URL = os.environ.get(
    "PCSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _peak_rss_mb() -> float:
    """This process's peak resident memory, MB (``VmHWM``; see bench/connector_stream.py)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def _customer(n: int) -> tuple[str, str]:
    return str(uuid.UUID(int=n + 1)), f"customer{n:04d}.onmicrosoft.com"


def write_file(path: Path, rows: int) -> None:
    """A payments CSV of ``rows`` rows with unique references."""
    currencies = (("USD", "{}.{:02d}"), ("EUR", "{}.{:02d}"), ("JPY", "{}"))
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("customer,date,amount,currency,reference,invoice\n")
        chunk = []
        for n in range(rows):
            tenant, domain = _customer(n % CUSTOMERS)
            currency, shape = currencies[n % 3]
            amount = shape.format(10 + n % 99991, n % 100)
            day = 1 + n % 28
            who = tenant if n % 2 else domain
            invoice = f"G{n % 5000:09d}" if n % 4 == 0 else ""
            chunk.append(f"{who},2026-10-{day:02d},{amount},{currency},PAY-{n:09d},{invoice}\n")
            if len(chunk) == 10000:
                handle.writelines(chunk)
                chunk.clear()
        handle.writelines(chunk)


def _setup(url: str) -> None:
    """Schema at head of the code on sys.path, plus the known customers."""
    from datetime import UTC, datetime

    from sync.db.engine import make_engine, make_session_factory
    from sync.db.migrate import upgrade
    from sync.db.models import Customer

    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with make_session_factory(engine).begin() as session:
        for n in range(CUSTOMERS):
            tenant, domain = _customer(n)
            session.add(
                Customer(
                    id=tenant,
                    name=domain,
                    domain=domain,
                    raw={},
                    content_hash="h",
                    first_seen_at=now,
                    synced_at=now,
                )
            )
    engine.dispose()


def child(code_root: str, config: str, file: str, mode: str) -> dict[str, object]:
    """Run one import (or dry run) in this process with the code under ``code_root``."""
    sys.path.insert(0, code_root)
    import sync.cli

    assert sync.cli.__file__ is not None
    assert sync.cli.__file__.startswith(code_root), sync.cli.__file__
    args = ["--config", config, "payments", "import", file]
    if mode == "dry-run":
        args.append("--dry-run")
    started = time.perf_counter()
    code = sync.cli.main(args)
    seconds = time.perf_counter() - started
    return {"exit": code, "seconds": round(seconds, 2), "peak_rss_mb": round(_peak_rss_mb(), 1)}


def _database(work: Path, kind: str, name: str) -> tuple[str, str | None]:
    """A fresh database URL (and the PostgreSQL schema to drop after)."""
    if kind == "sqlite":
        return f"sqlite:///{work / (name + '.db')}", None
    import sqlalchemy as sa

    schema = f"pcsync_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    joiner = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}", schema


def _drop(schema: str | None) -> None:
    if schema is None:
        return
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def run(work: Path, code_root: str, kind: str, file: Path, mode: str) -> dict[str, object]:
    """One timed child process against a new database."""
    url, schema = _database(work, kind, f"{mode}-{uuid.uuid4().hex[:6]}")
    try:
        # The schema of the code measured: an older pcsync refuses a newer schema.
        subprocess.run([sys.executable, __file__, "--setup", url, code_root], check=True, cwd=ROOT)
        config = work / "pcsync.toml"
        config.write_text(
            '[partner_center]\ntenant_id = "partner.onmicrosoft.com"\n'
            'client_id = "11111111-1111-1111-1111-111111111111"\n'
            f'[database]\nurl = "{url}"\n',
            encoding="utf-8",
        )
        out = subprocess.run(
            [sys.executable, __file__, "--child", code_root, str(config), str(file), mode],
            capture_output=True,
            text=True,
            check=False,
            cwd=work,
        )
        if out.returncode != 0:
            raise SystemExit(f"{mode} crashed: {out.stderr.strip()[-3000:]}")
        result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
        if result["exit"] != 0:
            raise SystemExit(f"{mode} failed: {out.stderr.strip()[-2000:]}")
        return result
    finally:
        _drop(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help="commit to compare with")
    parser.add_argument("--codes", default="baseline,now", help="which code to measure")
    parser.add_argument("--modes", default="import,dry-run")
    parser.add_argument("--setup", nargs=2, metavar=("URL", "CODE"), help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        sys.path.insert(0, args.setup[1])
        _setup(args.setup[0])
        return
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    work = Path(tempfile.mkdtemp(prefix="pcsync-bench-payments-"))
    try:
        file = work / "payments.csv"
        write_file(file, args.rows)
        size_mb = file.stat().st_size / 1e6
        print(f"{args.rows} rows, {size_mb:.1f} MB, {args.database}", flush=True)
        codes = args.codes.split(",")
        roots = {"now": str(ROOT)} if "now" in codes else {}
        if "baseline" in codes:
            baseline = work / "baseline"
            baseline.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline, "sync", "connectors",
                 "reconciliation"],
                capture_output=True,
                check=True,
            ).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
            roots = {"baseline": str(baseline), **roots}
        results: dict[tuple[str, str], dict[str, object]] = {}
        for mode in args.modes.split(","):
            for label, root in roots.items():
                result = run(work, root, args.database, file, mode)
                results[(label, mode)] = result
                print(json.dumps({"code": label, "mode": mode, **result}), flush=True)
        print()
        print(f"{'code':>9} {'mode':>8} {'seconds':>8} {'peak RSS MB':>12}")
        for (label, mode), r in results.items():
            print(f"{label:>9} {mode:>8} {r['seconds']:>8} {r['peak_rss_mb']:>12}")
        for mode in args.modes.split(","):
            if ("baseline", mode) in results and ("now", mode) in results:
                before, after = results[("baseline", mode)], results[("now", mode)]
                speedup = float(before["seconds"]) / float(after["seconds"])  # type: ignore[arg-type]
                print(f"{mode}: {speedup:.1f}x faster than the baseline")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
