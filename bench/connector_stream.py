"""Benchmark: stream simulator line items through the connector; lines/s and peak RSS.

    .venv/bin/python bench/connector_stream.py [--sizes 100000,1000000]

For each size a simulator (its own process) serves one invoice of that many
lines as a v2 export; a fresh client process then streams every line through
``PartnerCenter.v2_line_items`` (MSAL, TLS, gzip JSON Lines, typed records with
exact decimals) and reports its own peak RSS. In the same run a baseline client
downloads the same blobs with plain ``requests`` and parses each line with
``json.loads``: the ratio shows whether the connector's parsing is the bottleneck.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _serve(
    lines: int,
    state: str,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
    api: str,
    months: int,
) -> None:
    from connectors.simulator.data import Scale
    from connectors.simulator.server import Simulator, SimulatorConfig

    # Three USD customers: one currency, so one invoice per month, ``lines`` spread over them.
    # v1 serves billing periods before February 2024 only (as Microsoft does): a world of then.
    anchor = date(2024, 1, 20) if api == "v1" else None
    config = SimulatorConfig(
        scale=Scale(customers=3, invoices=months, lines_per_invoice=lines // months),
        export_seconds=0,
        anchor=anchor,
    )
    sim = Simulator(config, Path(state))
    invoice = sim.data.invoices[0].id
    # Blob storage holds an export's files before any client reads them; written
    # here, they are not written during the first client's timed run.
    if api == "v2":
        for each in sim.data.invoices:
            sim.prepare_invoice_export(each.id)
    sim.start()
    queue.put((sim.base_url, str(sim.tls.ca), invoice))
    while True:
        time.sleep(3600)


@contextmanager
def simulator(lines: int, api: str = "v2", months: int = 1) -> Iterator[tuple[str, str, str, str]]:
    """A simulator, in a process of its own, serving ``lines`` lines over ``months`` invoices.

    Yields its state folder (the clients' databases go there too), base URL, CA
    file and the first invoice's id; stops it and removes the folder after, since a
    million-line run leaves gigabytes there.
    """
    state = tempfile.mkdtemp(prefix="pcsync-bench-")
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(
        target=_serve, args=(lines, state, queue, api, months), daemon=True
    )
    server.start()
    try:
        base, ca, invoice = queue.get(timeout=300)
        yield state, base, ca, invoice
    finally:
        server.terminate()
        server.join()
        shutil.rmtree(state, ignore_errors=True)


def _peak_rss_mb() -> float:
    """This process's peak resident memory, MB.

    On Linux the high-water mark of this process image (``VmHWM``):
    ``ru_maxrss`` also counts the parent's resident memory at the moment it
    started this process (the memory the child shared before ``exec``), so a
    client run from a benchmark that had grown larger would report the
    benchmark's size, not its own.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def client(mode: str, base: str, invoice: str, cache: str) -> dict[str, object]:
    """Run one client in this process; return lines, seconds and peak RSS."""
    from connectors.partner_center import ClientOptions, Credentials, Endpoints, PartnerCenter
    from connectors.simulator.server import SimulatorConfig

    defaults = SimulatorConfig()
    pc = PartnerCenter.connect(
        Credentials(defaults.tenant_id, defaults.client_id, defaults.client_secret),
        Endpoints(authority_host=base, api_base_url=base, graph_base_url=base),
        ClientOptions(token_cache_path=Path(cache)),
    )
    started = time.perf_counter()
    count = 0
    total = Decimal(0)
    if mode == "connector":
        for line in pc.v2_line_items(invoice, currency="USD"):  # USD customers only
            count += 1
            total += line.subtotal  # type: ignore[assignment]
    else:
        import requests

        manifest = pc.exports.wait(pc.exports.request_billed(invoice))
        session = requests.Session()
        for blob in manifest.blobs:
            response = session.get(manifest.blob_url(blob), stream=True, timeout=60)
            for raw in gzip.GzipFile(fileobj=response.raw):
                row = json.loads(raw, parse_float=Decimal)
                count += 1
                total += row["Subtotal"]
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "lines": count,
        "seconds": round(seconds, 2),
        "lines_per_second": int(count / seconds),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "checksum": str(total),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--client", nargs=4, metavar=("MODE", "BASE", "INVOICE", "CACHE"))
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(*args.client)))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with simulator(size) as (state, base, ca, invoice):
            env = {**os.environ, "REQUESTS_CA_BUNDLE": ca}
            for mode in ("baseline", "connector"):
                out = subprocess.run(
                    [sys.executable, __file__, "--client", mode, base, invoice, f"{state}/c.json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout)
                result["size"] = size
                results.append(result)
                print(json.dumps(result), flush=True)
    print()
    print(f"{'lines':>9} {'mode':>10} {'lines/s':>9} {'peak RSS MB':>12} {'seconds':>8}")
    for r in results:
        print(
            f"{r['lines']:>9} {r['mode']:>10} {r['lines_per_second']:>9} "
            f"{r['peak_rss_mb']:>12} {r['seconds']:>8}"
        )
    by = {(r["size"], r["mode"]): r for r in results}
    for size in sorted({r["size"] for r in results}):
        ratio = by[(size, "connector")]["seconds"] / by[(size, "baseline")]["seconds"]  # type: ignore[operator]
        same = by[(size, "connector")]["checksum"] == by[(size, "baseline")]["checksum"]
        print(f"{size} lines: connector time / baseline time = {ratio:.2f}; same total: {same}")


if __name__ == "__main__":
    main()
