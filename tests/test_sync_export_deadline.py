"""A v2 export Microsoft is still preparing at the deadline: the run says what the next does.

The run gives up on it (``export_deadline_minutes``), lacks its lines and says so; the
next sync asks Microsoft for a new export of the document rather than polling the old
operation again — and the message says exactly that. Against the simulator, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync.jobs import SyncIncompleteError, SyncOptions, run_sync
from sync.runtime.runs import list_runs
from tests.test_sync import setup

EXPORTS = "/reports/partners/billing/reconciliation/"
OPERATIONS = "/v1.0/reports/partners/billing/operations/"


def _exports_requested(sim: Any, since: int) -> int:
    return sum(
        1
        for method, path, _ in sim.requests[since:]
        if method == "POST" and EXPORTS in path and path.endswith("/export")
    )


def _operations_polled(sim: Any, since: int) -> set[str]:
    return {path.split(OPERATIONS)[1] for _, path, _ in sim.requests[since:] if OPERATIONS in path}


def test_an_export_past_its_deadline_is_requested_anew_by_the_next_sync_as_the_run_says(
    start_simulator, connect_to, db_url, tmp_path
) -> None:
    sim = start_simulator(export_seconds=3600)  # Microsoft is still preparing every export
    settings, engine, sessions = setup(sim, db_url, tmp_path)
    impatient = connect_to(sim, export_deadline_seconds=0)  # gives up after the first poll
    with pytest.raises(SyncIncompleteError):
        run_sync(settings, engine, sessions, SyncOptions(), partner_center=impatient)
    last = list_runs(sessions)[0]
    assert last.completeness is not None
    timed_out = [m for m in last.completeness["missing"] if m["unit"] == "lineitems"]
    assert timed_out  # the billed exports
    for missing in timed_out:
        assert "still running after" in missing["reason"]
        assert "the next sync requests a new export" in missing["reason"]
        assert "resumes" not in missing["reason"]
    given_up = _operations_polled(sim, 0)
    assert given_up

    sim.config.export_seconds = 0  # a new export is ready at once; the old ones still run
    mark = len(sim.requests)
    run_sync(settings, engine, sessions, SyncOptions(), partner_center=impatient)
    assert list_runs(sessions)[0].status == "succeeded"
    assert _exports_requested(sim, mark) >= len(timed_out)  # asked for anew ...
    assert _operations_polled(sim, mark).isdisjoint(given_up)  # ... not resumed
    engine.dispose()
