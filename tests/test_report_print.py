"""The HTML report printed by headless Chromium: every table column lies inside the page.

Chromium is driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL on descriptors 3 and 4), so no WebSocket library is needed. The page
is laid out for print (print media, the printable width of an A4 landscape page, as
the report's ``@page`` asks) and every ``th``/``td`` is measured; the same page is then
printed to PDF to show it prints. Under CI a missing Chromium fails the test instead of
skipping it: .ci/run installs Debian's chromium.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.test_reports import FLAGGED, _html

# A4 landscape, 297 mm wide, less the report's 10 mm margins, in CSS pixels (96 per inch).
PRINTABLE_WIDTH = round((297 - 2 * 10) / 25.4 * 96)

MEASURE = """(() => {
  const limit = document.documentElement.clientWidth;
  const cells = [...document.querySelectorAll('th, td')];
  const outside = cells.filter(c => {
    const r = c.getBoundingClientRect();
    return r.width > 0 && (r.left < -0.5 || r.right > limit + 0.5);
  }).map(c => c.textContent.trim().slice(0, 40));
  return JSON.stringify({limit, cells: cells.length, outside,
    tables: document.querySelectorAll('table').length,
    print: matchMedia('print').matches});
})()"""


def _browser() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium package)")
    return browser


class _DevTools:
    """A minimal DevTools client over Chromium's pipe: commands in order, events skipped."""

    def __init__(self, browser: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child, before exec: Chromium reads 3, writes 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=wire,  # single-threaded test: the only way to place fds 3 and 4
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        command: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_chrome, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def wait_for(self, event: str) -> None:
        while self._message().get("method") != event:
            pass

    def close(self) -> None:
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self.process.kill()
        self.process.wait(timeout=30)


def browser_layout(
    page: Path,
    tmp_path: Path,
    *,
    media: str,
    width: int,
    height: int,
    measure: str,
    extra_css: str = "",
    pdf: bool = False,
) -> tuple[dict[str, Any], bytes | None]:
    """The page's cells measured by ``measure`` in a window of this width, laid out for
    ``media`` (``print`` or ``screen``); and, with ``pdf``, the page printed to PDF."""
    tools = _DevTools(_browser(), tmp_path / f"profile-{media}{len(extra_css)}")
    try:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tools.call("Page.enable", session)
        tools.call("Emulation.setEmulatedMedia", session, media=media)
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        tools.call("Page.navigate", session, url=page.as_uri())
        tools.wait_for("Page.loadEventFired")
        if extra_css:
            tools.call(
                "Runtime.evaluate",
                session,
                expression="document.head.insertAdjacentHTML('beforeend', "
                f"{json.dumps('<style>' + extra_css + '</style>')})",
            )
        measured = tools.call("Runtime.evaluate", session, expression=measure, returnByValue=True)
        printed = None
        if pdf:
            data = tools.call("Page.printToPDF", session, preferCSSPageSize=True)["data"]
            printed = base64.b64decode(data)
        return json.loads(measured["result"]["value"]), printed
    finally:
        tools.close()


def _print_layout(page: Path, tmp_path: Path, extra_css: str = "") -> tuple[dict[str, Any], bytes]:
    """The page's cells measured at print layout, and the page printed to PDF."""
    layout, pdf = browser_layout(
        page,
        tmp_path,
        media="print",
        width=PRINTABLE_WIDTH,
        height=800,
        measure=MEASURE,
        extra_css=extra_css,
        pdf=True,
    )
    assert pdf is not None
    return layout, pdf


def test_printed_html_report_has_no_column_outside_the_page(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_html(FLAGGED), encoding="utf-8")
    layout, pdf = _print_layout(page, tmp_path)
    assert layout["print"]  # laid out for print, not for the screen
    # the page's width, less a scroll bar's in the headless window: stricter than the paper
    assert PRINTABLE_WIDTH - 20 <= layout["limit"] <= PRINTABLE_WIDTH
    assert layout["tables"] >= 7  # actions ×3, customers, invoices, payments, findings, changes
    assert layout["cells"] > 100
    assert layout["outside"] == []
    assert pdf.startswith(b"%PDF-")
    assert re.search(rb"/Type\s*/Page(?!s)", pdf)  # at least one printed page


def test_the_print_measurement_sees_a_column_that_does_not_fit(tmp_path: Path) -> None:
    """The check above can fail: a table forced wider than the page is caught."""
    page = tmp_path / "report.html"
    page.write_text(_html(FLAGGED), encoding="utf-8")
    layout, _ = _print_layout(page, tmp_path, "table{min-width:2000px}")
    assert layout["outside"]
