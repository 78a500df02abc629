"""The HTML report on screen, 1280 px wide, in headless Chromium: no table column is cut off.

The report is laid out for the screen (screen media, a 1280 px wide window) with evidence
as long as the demo's (Azure plans' explanations, GUIDs, API paths), and every
``th``/``td`` is measured: each lies inside the page's scrollable width and inside every
ancestor that clips its content (``overflow`` other than ``visible``), and no element
that clips holds more than it shows. Chromium is driven as in tests/test_report_print.py;
under CI a missing Chromium fails the test instead of skipping it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_report_print import _print_layout, browser_layout
from tests.test_reports import FLAGGED, GUID, _html

SCREEN_WIDTH = 1280

MEASURE = """(() => {
  const root = document.documentElement;
  const page = Math.max(root.scrollWidth, document.body.scrollWidth);
  const clips = el => ['overflowX', 'overflowY'].some(
    k => getComputedStyle(el)[k] !== 'visible');
  const label = el => el.tagName.toLowerCase() + ': ' + el.textContent.trim().slice(0, 40);
  const cells = [...document.querySelectorAll('th, td')];
  const outside = [], clipped = [];
  for (const c of cells) {
    const r = c.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.left < -0.5 || r.right + window.scrollX > page + 0.5) outside.push(label(c));
    for (let a = c.parentElement; a && a !== root; a = a.parentElement) {
      if (!clips(a)) continue;
      const box = a.getBoundingClientRect();
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) clipped.push(label(c));
    }
  }
  const hiding = [...document.querySelectorAll('body *')].filter(
    el => clips(el) && el.scrollWidth > el.clientWidth + 1).map(label);
  return JSON.stringify({viewport: root.clientWidth, page, cells: cells.length,
    tables: document.querySelectorAll('table').length, outside, clipped, hiding,
    screen: matchMedia('screen').matches});
})()"""

AZURE = [
    f"Azure plan Azure plan ({GUID}, active): 2 Azure subscription(s) with 62.50 USD "
    "unbilled consumption since the last invoice",
    f"  Azure subscription Azure subscription 1 ({GUID}): 30.00 USD unbilled",
    "  an Azure plan cannot be suspended through the subscription API while any Azure "
    "subscription in it is active (Microsoft error 900115), and pcsync never cancels "
    "anything by itself; consumption goes on being billed to the partner",
    "  by hand, the partner may cancel an Azure subscription in the plan (Partner Center "
    "portal, or POST /v1/customers/{customer}/subscriptions/{plan}/azureEntitlements/"
    "{azure subscription}/cancel with a cancellationReason; Microsoft documents it for "
    "compromise or abuse, and …/reactivate undoes it), then suspend the plan "
    "(learn.microsoft.com/en-us/partner-center/developer/cancel-an-azure-subscription)",
    "renewal guard: Microsoft 365 Business Standard (36fc2711-cd65-4ef3-96bc-e4c9b54c585c) "
    "auto-renews on 2026-12-05: next term 33 × 12.50 USD = 412.50 USD per month",
]

# The report's flags with the demo's longest evidence, and a long unbroken finding.
LONG = {
    **FLAGGED,
    "contacts": {
        **FLAGGED["contacts"],  # type: ignore[dict-item]
        "c-big": "accounts-payable.department@big-suspend-holdings.onmicrosoft.com",
    },
    "flags": [
        {**flag, "reasons": [*flag["reasons"], *AZURE]}
        for flag in FLAGGED["flags"]  # type: ignore[attr-defined]
    ],
    "findings": [
        *FLAGGED.get("findings", []),  # type: ignore[attr-defined]
        {
            "kind": "billed_for_suspended",
            "invoice_id": "G000055449",
            "customer_id": GUID,
            "subscription_id": GUID,
            "currency": "EUR",
            "amount": "662.40",
            "detail": "billed 2026-10-01–2026-10-31 while suspended; "
            + "/".join([GUID] * 4)
            + "; new commerce: Microsoft's normal billing, not an error",
        },
    ],
}


def _screen_layout(page: Path, tmp_path: Path, extra_css: str = "") -> dict[str, Any]:
    """The page's cells measured at screen layout in a 1280 px wide window."""
    layout, _ = browser_layout(
        page,
        tmp_path,
        media="screen",
        width=SCREEN_WIDTH,
        height=900,
        measure=MEASURE,
        extra_css=extra_css,
    )
    return layout


def test_report_on_a_1280_px_screen_cuts_off_no_column(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_html(LONG), encoding="utf-8")
    layout = _screen_layout(page, tmp_path)
    assert layout["screen"]
    assert SCREEN_WIDTH - 20 <= layout["viewport"] <= SCREEN_WIDTH
    assert layout["tables"] >= 7  # actions ×3, customers, invoices, payments, findings, changes
    assert layout["cells"] > 100
    assert layout["outside"] == []  # every cell within the page's scrollable width
    assert layout["clipped"] == []  # no cell cut by an overflow-clipping ancestor
    assert layout["hiding"] == []  # nothing scrolls away inside a panel
    assert layout["page"] <= layout["viewport"]  # the tables fit: no sideways scrolling


def test_the_screen_measurement_sees_a_column_cut_off(tmp_path: Path) -> None:
    """The checks above can fail: a table wider than its clipping panel is caught."""
    page = tmp_path / "report.html"
    page.write_text(_html(LONG), encoding="utf-8")
    layout = _screen_layout(page, tmp_path, ".panel{overflow:hidden}table{min-width:2000px}")
    assert layout["clipped"]
    assert layout["hiding"]


def test_the_long_evidence_also_prints_inside_the_page(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_html(LONG), encoding="utf-8")
    layout, pdf = _print_layout(page, tmp_path)
    assert layout["print"]
    assert layout["outside"] == []
    assert pdf.startswith(b"%PDF-")


def test_a_wide_statement_on_a_1280_px_screen_cuts_off_no_column(tmp_path: Path) -> None:
    """The customer statement, as a browser shows it before printing: nothing cut off."""
    from tests.test_statement import _wide_statement_html

    page = tmp_path / "statement.html"
    page.write_text(_wide_statement_html(), encoding="utf-8")
    layout = _screen_layout(page, tmp_path)
    assert layout["screen"]
    assert layout["tables"] >= 6
    assert layout["outside"] == []
    assert layout["clipped"] == []
    assert layout["hiding"] == []
