"""The report's Actions section against the stored collections plan, on both databases.

Each customer the plan would suspend is in the Suspend table, each it would follow up in
the Call table, each to reactivate in the Reactivate table — one row per flag, with the
flag's overdue amount — and nobody else is there.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import pytest

from tests.world import AS_OF, World

GROUPS = {"suspend": "Suspend", "follow_up": "Call", "reactivate": "Reactivate"}


def _groups(html: str) -> dict[str, str]:
    """Each action table's HTML by its heading (Suspend, Call, Reactivate)."""
    actions = html.split('<h2 id="actions">Actions</h2>', 1)[1].split("<h2>", 1)[0]
    parts = re.split(r"<h3>(\w+) \((\d+)\)</h3>", actions)[1:]
    titles, counts, bodies = parts[0::3], parts[1::3], parts[2::3]
    found = {t: (int(c), b) for t, c, b in zip(titles, counts, bodies, strict=True)}
    assert set(found) == set(GROUPS.values())
    for _title, (count, body) in found.items():
        assert body.count("<tr><td>") == count  # the heading counts the rows shown
    return {title: body for title, (_, body) in found.items()}


def test_the_actions_section_names_every_customer_of_the_plan_in_its_table(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert world.cli("collections", "plan", "--as-of", AS_OF, "--json") == 0
    flags = json.loads(capsys.readouterr().out)["flags"]
    out = tmp_path / "reports"
    assert world.cli("report", "--as-of", AS_OF, "--format", "html", "--out", str(out)) == 0
    groups = _groups((out / f"pcsync-{AS_OF}.html").read_text(encoding="utf-8"))
    by_action = {a: [f for f in flags if f["action"] == a] for a in GROUPS}
    assert by_action["suspend"]  # the world has customers to suspend
    assert by_action["follow_up"]  # and to call
    for action, title in GROUPS.items():
        body = groups[title]
        assert body.count("<tr><td>") == len(by_action[action]), title
        for flag in by_action[action]:
            assert f"<tr><td>{escape(flag['customer_name'])}</td>" in body, (title, flag)
            whole = int(flag["overdue_amount"].split(".")[0])
            assert f"{whole:,}" in body, (title, flag["overdue_amount"])
    for flag in flags:
        if flag["action"] not in GROUPS:  # nothing to do: in no action table
            assert not any(
                f"<tr><td>{escape(flag['customer_name'])}</td>" in body for body in groups.values()
            )
