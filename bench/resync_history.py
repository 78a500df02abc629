"""Benchmark: a no-change resync beside the full sync of a partner's invoice history.

    .venv/bin/python bench/resync_history.py [--sizes 100000,1000000] [--months 34] [--api v2]

``bench/sync_ingest.py`` puts every line in one invoice, the hardest world for
throughput. A partner's first sync reads its history instead: pcsync has no
history window, so it takes every invoice Microsoft lists. Here the simulator
serves the same number of lines spread over ``--months`` monthly invoices
(34 = every month from February 2024, where the v2 export begins, to November
2026) and pcsync (fresh process, SQLite and PostgreSQL) runs a full sync of
invoices and line items, then a second sync with nothing new. Printed: both
syncs' time and requests (Partner Center and Graph calls, as ``pcsync runs``
counts them), and the resync's share of each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.connector_stream import simulator  # noqa: E402
from bench.sync_ingest import _migrate, _schema, _simulator_identity  # noqa: E402

INGEST = ROOT / "bench" / "sync_ingest.py"


def _run(
    db: str, state: str, base: str, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """One pcsync client in a fresh process, into a new database of its own."""
    with contextlib.ExitStack() as cleanup:
        if db == "sqlite":
            path = Path(state) / "history.db"
            url = f"sqlite:///{path}"
            for suffix in ("", "-wal", "-shm"):
                cleanup.callback(Path(f"{path}{suffix}").unlink, missing_ok=True)
        else:
            url = cleanup.enter_context(_schema(args.postgres))
        _migrate(url)
        out = subprocess.run(
            [sys.executable, str(INGEST), "--client", f"pcsync-{db}", base, state, url, args.api],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--months", type=int, default=34, help="monthly invoices in the history")
    parser.add_argument("--api", choices=("v1", "v2"), default="v2", help="the line items API")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "PCSYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(
        f"{'lines':>9} {'invoices':>8} {'db':>8} {'full s':>8} {'resync s':>9} {'time %':>7}"
        f" {'requests':>12} {'requests %':>10}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        with simulator(size, args.api, args.months) as (state, base, ca, _):
            env = {**os.environ, "REQUESTS_CA_BUNDLE": ca, **_simulator_identity()}
            for db in ("sqlite", "postgres"):
                r = _run(db, state, base, env, args)
                full, again = r["requests"][-2:]
                print(
                    f"{r['lines']:>9} {args.months:>8} {db:>8} {r['seconds']:>8} "
                    f"{r['resync_seconds']:>9} {100 * r['resync_seconds'] / r['seconds']:>6.2f}%"
                    f" {f'{again} of {full}':>12} {100 * again / full:>9.2f}%",
                    flush=True,
                )


if __name__ == "__main__":
    main()
