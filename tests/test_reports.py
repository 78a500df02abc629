"""Reports: XLSX cells typed and safe, CSV exact, totals equal to the reconciliation."""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal
from html import escape
from pathlib import Path

import pandas as pd
from openpyxl import load_workbook

from reconciliation.money import minor_unit
from sync.cli import main
from sync.reports.data import ReportData
from sync.reports.render import neutralise, to_csv, to_xlsx
from sync.reports.tables import Table, report_tables

GUID = "00000123-0000-4000-8000-000000000001"
AGING = {"current": "0.00", "1-30": "10.00", "31-60": "0.00", "61-90": "0.00", "over_90": "0.00"}
DOCUMENT = {
    "as_of": "2026-11-25",
    "customers": [
        {
            "customer_id": GUID,
            "customer_name": '=HYPERLINK("x")',
            "currency": "USD",
            "microsoft_cost": "1234.50",
            "microsoft_cost_with_tax": "1333.26",
            "charged": "1234.50",
            "paid": "1224.50",
            "unapplied_credit": "0.00",
            "balance": "10.00",
            "overdue_amount": "10.00",
            "days_overdue": 12,
            "aging": AGING,
            "paid_to_microsoft": "0.00",
            "owed_to_microsoft": "1333.26",
            "exposure": "108.76",
        },
        {
            "customer_id": "00000123",
            "customer_name": "Yen Co",
            "currency": "JPY",
            "microsoft_cost": "1000",
            "microsoft_cost_with_tax": "1100",
            "charged": "1000",
            "paid": "0",
            "unapplied_credit": "0",
            "balance": "1000",
            "overdue_amount": "0",
            "days_overdue": 0,
            "aging": {**AGING, "1-30": "0", "current": "1000"},
            "paid_to_microsoft": "0",
            "owed_to_microsoft": "1100",
            "exposure": "1100",
        },
    ],
    "invoices": [
        {
            "invoice_id": "G000000001",
            "invoice_date": "2026-10-05",
            "currency": "USD",
            "total": "1333.26",
            "lines_total": "1333.26",
            "difference": "0.00",
            "paid": "0.00",
            "due_date": "2026-12-04",
            "outstanding": "1333.26",
            "days_to_due": 9,
        },
    ],
    "findings": [
        {
            "kind": "duplicate_line",
            "customer_id": GUID,
            "subscription_id": None,
            "invoice_id": "G000000001",
            "amount": "12.34",
            "currency": "USD",
            "detail": "+1 seat billed twice",
        },
    ],
}


def _tables(document: dict[str, object]) -> list[Table]:
    """The report's tables from a report's JSON document, read through the typed reader."""
    return report_tables(ReportData.from_document(document))


def test_xlsx_has_every_sheet_typed_cells_and_no_formulas() -> None:
    book = load_workbook(io.BytesIO(to_xlsx(_tables(DOCUMENT), "Billing", "2026-11-25")))
    assert book.sheetnames == [
        "Summary",
        "Customers",
        "Aging",
        "Findings",
        "Microsoft invoices",
        "Payments",
        "Flags & actions",
        "Suspensions",
    ]
    customers = book["Customers"]
    assert customers["A1"].value == "Customers as of 2026-11-25"
    assert customers.freeze_panes == "A3"  # title and header rows stay in view
    assert customers.auto_filter.ref == "A2:P4"  # header row and the two customers
    header = [cell.value for cell in customers[2]]
    row = {h: cell for h, cell in zip(header, customers[3], strict=True)}
    assert row["Customer ID"].data_type == "s"
    assert row["Customer ID"].value == GUID
    assert row["Customer"].value == '\'=HYPERLINK("x")'  # neutralised, not a formula
    assert row["Customer"].data_type == "s"
    assert row["Charged"].data_type == "n"
    assert row["Charged"].value == 1234.5
    assert '"USD"' in row["Charged"].number_format
    yen = {h: cell for h, cell in zip(header, customers[4], strict=True)}
    assert yen["Customer ID"].value == "00000123"  # a numeric-looking id stays text
    assert yen["Charged"].number_format.startswith('#,##0 "JPY"')
    invoices = book["Microsoft invoices"]
    columns = [cell.value for cell in invoices[2]]
    assert invoices.cell(row=3, column=columns.index("Date") + 1).is_date
    findings = book["Findings"]
    finding = {h.value: c.value for h, c in zip(findings[2], findings[3], strict=True)}
    assert finding["Detail"] == "'+1 seat billed twice"
    assert finding["Customer"] == '\'=HYPERLINK("x")'  # the name beside the id


BIG = {
    **DOCUMENT,
    "customers": [
        {**DOCUMENT["customers"][0], "charged": "23251.85", "balance": "-1234567.89"},  # type: ignore[dict-item]
        {**DOCUMENT["customers"][1], "owed_to_microsoft": "98765432"},  # type: ignore[dict-item]
    ],
    "subscriptions": {"sub-1": "Microsoft 365 E3"},
    "findings": [{**DOCUMENT["findings"][0], "subscription_id": "sub-1"}],  # type: ignore[dict-item]
    "actions": [
        {
            "requested_at": "2026-11-25T10:00:00+00:00",
            "requested_by": "ana",
            "customer_id": GUID,
            "customer_name": "Contoso",
            "subscription_id": "sub-1",
            "action": "suspend",
            "result": "succeeded",
            "status_before": "active",
            "status_after": "suspended",
            "ms_request_id": "r1",
            "error": None,
        }
    ],
}


def _shown_by_format(value: float, number_format: str) -> str:
    """What a spreadsheet shows for a number under our ``#,##0.00 "USD"`` formats."""
    positive, _, _ = number_format.partition(";")
    places = positive.split(" ")[0].partition(".")[2].count("0")
    unit = positive.split(" ", 1)[1].strip('"') if " " in positive else ""
    return f"{value:,.{places}f} {unit}".strip()


def test_xlsx_columns_are_as_wide_as_every_number_they_show() -> None:
    from openpyxl.utils import get_column_letter

    book = load_workbook(io.BytesIO(to_xlsx(_tables(BIG), "Billing", "2026-11-25")))
    checked = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows(min_row=3):
            for cell in row:
                width = sheet.column_dimensions[get_column_letter(cell.column)].width
                if cell.is_date:
                    assert width >= 10, (sheet.title, cell.coordinate)
                elif cell.data_type == "n" and cell.value is not None:
                    shown = _shown_by_format(float(cell.value), cell.number_format)
                    assert width >= len(shown), (sheet.title, cell.coordinate, shown, width)
                    checked += 1
    assert checked > 20
    assert (
        "-1,234,567.89 USD"
        in {  # the widest figure was among those checked
            _shown_by_format(float(c.value), c.number_format)
            for c in book["Customers"]["J"][2:]
            if c.data_type == "n"
        }
    )


def test_every_sheet_prints_landscape_one_page_wide_with_titles_and_footer() -> None:
    book = load_workbook(io.BytesIO(to_xlsx(_tables(BIG), "Billing", "2026-11-25")))
    for sheet in book.worksheets:
        assert sheet["A1"].value == f"{sheet.title} as of 2026-11-25"
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
        assert sheet.print_title_rows == "$2:$2", sheet.title
        assert sheet.freeze_panes == "A3"
        assert sheet.auto_filter.ref.startswith("A2:"), sheet.title
        assert "2026-11-25" in sheet.oddFooter.left.text
        assert "&P" in sheet.oddFooter.right.text
        assert "&N" in sheet.oddFooter.right.text


def test_xlsx_timestamps_are_dates_and_findings_name_customer_and_product() -> None:
    from datetime import datetime

    book = load_workbook(io.BytesIO(to_xlsx(_tables(BIG), "Billing", "2026-11-25")))
    changes = book["Suspensions"]
    when = changes["A3"]
    assert changes["A2"].value == "When (UTC)"
    assert when.is_date
    assert when.value == datetime(2026, 11, 25, 10, 0)
    findings = book["Findings"]
    finding = {h.value: c.value for h, c in zip(findings[2], findings[3], strict=True)}
    assert finding["Customer ID"] == GUID
    assert finding["Product"] == "Microsoft 365 E3"


def test_csv_round_trips_through_pandas_with_exact_totals() -> None:
    customers = next(t for t in _tables(DOCUMENT) if t.name == "Customers")
    frame = pd.read_csv(io.StringIO(to_csv(customers)), dtype=str)
    usd = frame[frame["Currency"] == "USD"]
    assert sum(Decimal(v) for v in usd["Charged"]) == Decimal("1234.50")
    assert list(frame["Customer ID"]) == [GUID, "00000123"]
    assert frame["Customer"][0] == '\'=HYPERLINK("x")'


def test_charges_show_net_tax_and_gross_and_old_documents_leave_them_empty() -> None:
    taxed = {
        **DOCUMENT,
        "customers": [
            {
                **DOCUMENT["customers"][0],
                "charged_net": "1037.39",
                "charged_tax": "197.11",
                "exposure_microsoft_tax": "0.80",
            },
            {**DOCUMENT["customers"][1], "charged_net": "1000", "charged_tax": "0"},
        ],
    }
    tables = {t.name: t for t in _tables(taxed)}
    usd = tables["Customers"].rows[0]
    assert (usd["charged_net"], usd["charged_tax"], usd["charged"]) == (
        Decimal("1037.39"),
        Decimal("197.11"),
        Decimal("1234.50"),
    )
    frame = pd.read_csv(io.StringIO(to_csv(tables["Summary"])), dtype=str)
    summary = frame[frame["Currency"] == "USD"].iloc[0]
    assert (summary["Charged (net)"], summary["Tax"], summary["Charged"]) == (
        "1037.39",
        "197.11",
        "1234.50",
    )
    assert summary["Microsoft tax on exposure"] == "0.80"
    # A reconciliation stored before these columns existed: empty cells, not a failure.
    old = {t.name: t for t in _tables(DOCUMENT)}
    assert old["Customers"].rows[0]["charged_net"] is None
    assert old["Summary"].rows[0]["charged_tax"] is None
    assert to_xlsx(list(old.values()), "old", "2026-11-25")


def test_neutralise() -> None:
    assert [neutralise(t) for t in ("=1", "+1", "-1", "@a", "\tx", "\rx", "ok", "")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "x",  # a lone CR is a control character: taken out, nothing left to neutralise
        "ok",
        "",
    ]


CONTROLS = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))


def test_control_characters_leave_xlsx_and_csv_cells_and_formulas_stay_neutralised() -> None:
    customers = [
        {**DOCUMENT["customers"][0], "customer_name": f"A\x1b[31mcme{CONTROLS} Ltd"},  # type: ignore[dict-item]
        {**DOCUMENT["customers"][1], "customer_name": "\x01=HYPERLINK(1)"},  # type: ignore[dict-item]
    ]
    tables = _tables({**DOCUMENT, "customers": customers})
    book = load_workbook(io.BytesIO(to_xlsx(tables, "Billing\x07", "2026-11-25")))
    sheet = book["Customers"]
    column = [cell.value for cell in sheet[2]].index("Customer")
    names = [row[column].value for row in sheet.iter_rows(min_row=3)]
    assert names == ["Acme\t\n Ltd", "'=HYPERLINK(1)"]
    csv_text = to_csv(next(t for t in tables if t.name == "Customers"))
    assert "\x1b" not in csv_text
    assert "\x00" not in csv_text
    assert "'=HYPERLINK(1)" in csv_text


def test_report_totals_equal_the_reconciliation(
    world, db_url, tmp_path: Path, capsys, monkeypatch
) -> None:
    settings, engine = world.settings, world.engine
    base = ["--config", str(settings.source)]
    assert main([*base, "reconcile", "--as-of", "2026-11-25", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    out = tmp_path / "reports"
    assert main([*base, "report", "--as-of", "2026-11-25", "--out", str(out)]) == 0
    written = json.loads((out / "pcsync-2026-11-25.json").read_text())
    assert {k: written[k] for k in document} == document
    # the report's JSON file reads back into the typed rows the report was built from
    stored = {k: written[k] for k in document}
    assert ReportData.from_document(written).as_json(stored) == written
    capsys.readouterr()
    assert main([*base, "collections", "plan", "--as-of", "2026-11-25", "--json"]) == 0
    assert written["flags"] == json.loads(capsys.readouterr().out)["flags"]
    frame = pd.read_csv(out / "pcsync-2026-11-25-customers.csv", dtype=str, encoding="utf-8-sig")
    assert (out / "pcsync-2026-11-25-customers.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    names = sorted(path.name for path in out.iterdir())
    assert "pcsync-2026-11-25-flags-actions.csv" in names
    assert not [name for name in names if " " in name or "&" in name]
    for currency in {c["currency"] for c in document["customers"]}:
        expected = sum(
            Decimal(c["balance"]) for c in document["customers"] if c["currency"] == currency
        )
        got = sum(Decimal(v) for v in frame[frame["Currency"] == currency]["Balance"])
        assert got == expected
    book = load_workbook(out / "pcsync-2026-11-25.xlsx")
    # a title row and a header row above the data
    assert len(list(book["Customers"].iter_rows())) == len(document["customers"]) + 2
    assert len(list(book["Payments"].iter_rows())) == len(document["payments"]) + 2
    assert len(list(book["Flags & actions"].iter_rows())) == len(written["flags"]) + 2
    html = (out / "pcsync-2026-11-25.html").read_text()
    suspends = sum(1 for f in written["flags"] if f["action"] == "suspend")
    assert f'Customers to suspend</div>\n<div class="value">{suspends}</div>' in html
    actions = html.split('<h2 id="actions">Actions</h2>', 1)[1].split("<h2>", 1)[0]
    named = [f for f in written["flags"] if f["action"] in ("suspend", "follow_up")]
    assert named  # the fixture has customers to suspend or call
    for flag in named:
        assert escape(flag["customer_name"]) in actions, flag["customer_name"]
    engine.dispose()


def _html(document: dict[str, object]) -> str:
    from sync.reports.html import to_html

    return to_html(ReportData.from_document(document), "Partner Center billing — 2026-11-25")


def test_html_is_self_contained_and_escapes_user_data() -> None:
    import re
    from html.parser import HTMLParser

    hostile = {
        **DOCUMENT,
        "customers": [
            {
                **DOCUMENT["customers"][0],
                "customer_name": "<script>alert(1)</script>",  # type: ignore[index]
                "overdue_amount": "10.00",
            },
            DOCUMENT["customers"][1],
        ],
        "actions": [
            {
                "requested_at": "2026-11-25T10:00:00+00:00",
                "requested_by": "<b>ana</b>",
                "customer_name": "Contoso",
                "subscription_id": "s1",
                "action": "suspend",
                "result": "failed",
                "status_before": "active",
                "status_after": None,
                "error": "Microsoft refused (403 900115): <img onerror=alert(1)>",
            }
        ],
    }  # type: ignore[index]
    page = _html(hostile)
    assert "<h2>Changes made at Microsoft</h2>" in page
    assert "&lt;b&gt;ana&lt;/b&gt;" in page
    assert "<img" not in page
    HTMLParser().feed(page)  # parses
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=|url\(|@import|https?://""", page)
    assert "<title>Partner Center billing — 2026-11-25</title>" in page
    assert page.count("<svg") == 4  # aging + top overdue, per currency


FLAGGED = {
    **BIG,
    "payments": [
        {
            "reference": "PAY-1",
            "customer_id": GUID,
            "customer_name": "Contoso",
            "payment_date": "2026-11-20",
            "currency": "USD",
            "amount": "1224.50",
            "applied": "1224.50",
            "unapplied": "0.00",
            "applied_to": ["G000000001"],
        }
    ],
    "contacts": {"c-small": "ap@small.example"},
    "approvals": {"c-big": "approved by ana on 2026-11-24"},
    "flags": [
        {
            "customer_id": cid,
            "customer_name": name,
            "currency": "USD",
            "action": action,
            "stage": stage,
            "overdue_amount": amount,
            "days_overdue": days,
            "reasons": [f"G000000001: {amount} USD unpaid, due 2026-10-01 ({days} days overdue)"],
        }
        for cid, name, action, stage, amount, days in (
            ("c-small", "Small Suspend Ltd", "suspend", "suspend", "900.00", 60),
            ("c-big", "Big Suspend Ltd", "suspend", "suspend", "23251.85", 40),
            ("c-call", "Call Me GmbH", "follow_up", "reminder", "150.00", 12),
            ("c-back", "Paid Up Inc", "reactivate", None, "0.00", 0),
            ("c-ok", "Nothing To Do", "none", None, "0.00", 0),
        )
    ],
}


def test_html_actions_come_first_riskiest_first_with_contact_approval_and_evidence() -> None:
    page = _html(FLAGGED)
    actions = page.split('<h2 id="actions">Actions</h2>', 1)[1].split("<h2>", 1)[0]
    assert page.index('id="actions"') < page.index('class="cards"')  # before everything else
    suspend, call, reactivate = (
        actions.split("<h3>Suspend (2)</h3>")[1].split("<h3>")[0],
        actions.split("<h3>Call (1)</h3>")[1].split("<h3>")[0],
        actions.split("<h3>Reactivate (1)</h3>")[1],
    )
    # 23,251.85 × 40 days outranks 900.00 × 60 days
    assert suspend.index("Big Suspend Ltd") < suspend.index("Small Suspend Ltd")
    assert "23,251.85 USD" in suspend
    assert "approved by ana on 2026-11-24" in suspend
    assert "awaiting approval" in suspend
    assert "ap@small.example" in suspend
    assert "unpaid, due 2026-10-01 (60 days overdue)" in suspend
    assert "Call Me GmbH" in call
    assert "reminder" in call
    assert "Paid Up Inc" in reactivate
    assert "Nothing To Do" not in actions


def test_html_has_payments_and_thousands_separators_in_every_amount() -> None:
    import re

    page = _html(FLAGGED)
    payments = page.split("<h2>Payments</h2>", 1)[1].split("<h2>", 1)[0]
    assert "PAY-1" in payments
    assert "1,224.50" in payments
    assert "23,251.85" in page
    assert "-1,234,567.89" in page
    assert "98,765,432" in page
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', page)
    assert cells
    # no amount of 1,000 or more without its separator
    assert not [c for c in cells if re.search(r"\d{4}(\.|\s|$)", c)]


def test_html_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import pytest
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":  # a skip would pass CI without a browser having run
            pytest.fail("Chromium is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium package)")
    page = tmp_path / "report.html"
    page.write_text(_html(DOCUMENT), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1280,1200", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "<title>Partner Center billing — 2026-11-25</title>" in dom
    with Image.open(shot) as image:
        assert image.size == (1280, 1200)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50  # text, bars and tables, not a blank page


def test_a_control_character_in_a_customer_name_still_writes_every_report(
    world, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    with world.engine.begin() as c:  # as Partner Center sent it
        c.execute(
            sa.text("UPDATE customers SET name = :name WHERE id = :id"),
            {"name": "Bad\x0bName\x1b[2J Ltd", "id": world.never},
        )
    out = tmp_path / "reports"
    assert world.cli("report", "--as-of", "2026-11-25", "--out", str(out)) == 0
    sheet = load_workbook(out / "pcsync-2026-11-25.xlsx")["Customers"]
    column = [cell.value for cell in sheet[2]].index("Customer")
    assert "BadName Ltd" in [row[column].value for row in sheet.iter_rows(min_row=3)]
    assert "BadName Ltd" in (out / "pcsync-2026-11-25-customers.csv").read_text()


def test_lines_and_margin_sheets_show_every_billed_line_of_the_month(
    world, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa
    from openpyxl.utils import get_column_letter

    world.configure('[billing]\nmarkup_percent = "12.5"\n')
    out = tmp_path / "reports"
    assert world.cli("report", "--as-of", "2026-11-25", "--out", str(out)) == 0
    with world.engine.connect() as c:
        newest = c.scalar(
            sa.text("SELECT max(invoice_date) FROM invoices WHERE invoice_date <= '2026-11-25'")
        )
        month = str(newest)[:7]
        stored = c.execute(
            sa.text(
                "SELECT l.currency, l.subtotal FROM invoice_line_items l JOIN invoices i "
                "ON i.id = l.invoice_id WHERE l.customer_id IS NOT NULL "
                "AND substr(CAST(i.invoice_date AS TEXT), 1, 7) = :month"
            ),
            {"month": month},
        ).all()
    assert stored
    cost = {cur: sum((Decimal(str(s)) for c_, s in stored if c_ == cur), Decimal(0))
            for cur in {c_ for c_, _ in stored}}  # fmt: skip
    lines = pd.read_csv(out / "pcsync-2026-11-25-lines.csv", dtype=str, encoding="utf-8-sig")
    assert len(lines) == len(stored)  # every billed line of the month, one row each
    for currency, total in cost.items():
        mine = lines[lines["Currency"] == currency]
        unit = Decimal(10) ** -minor_unit(currency)  # what rounding one line may move
        assert sum(Decimal(v) for v in mine["Cost"]) == total
        for c_, ch, m in zip(mine["Cost"], mine["Charge (net)"], mine["Margin"], strict=True):
            assert abs(Decimal(ch) - Decimal(c_) * Decimal("1.125")) <= unit / 2
            assert abs(Decimal(m) - (Decimal(ch) - Decimal(c_))) <= unit
    assert lines["Customer"].notna().all()
    assert lines["Product"].notna().all()
    assert lines["Term and billing cycle"].notna().any()
    book = load_workbook(out / "pcsync-2026-11-25.xlsx")
    margin = book["Margin"]
    header = [c.value for c in margin[2]]
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in margin.iter_rows(3)]
    for currency, total in cost.items():
        per_customer = [r for r in rows if r["By"] == "customer" and r["Currency"] == currency]
        per_product = [r for r in rows if r["By"] == "product" and r["Currency"] == currency]
        for group in (per_customer, per_product):
            assert abs(sum(Decimal(str(r["Cost"])) for r in group) - total) <= len(group)
            assert sum(r["Lines"] for r in group) == sum(1 for c_, _ in stored if c_ == currency)
    for sheet in (book["Lines"], margin):  # widths ≥ what each number shows; print setup
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.print_title_rows == "$2:$2"
        for row in sheet.iter_rows(min_row=3):
            for cell in row:
                if cell.data_type == "n" and cell.value is not None and not cell.is_date:
                    width = sheet.column_dimensions[get_column_letter(cell.column)].width
                    shown = _shown_by_format(float(cell.value), cell.number_format)
                    assert width >= len(shown), (sheet.title, cell.coordinate, shown)
    html = (out / "pcsync-2026-11-25.html").read_text()
    assert "<h2>Margin</h2>" in html
    # More lines than a sheet keeps: the sheet has the first ones and says so, the CSV all.
    monkeypatch.setattr("sync.reports.lines.XLSX_LINES", 5)
    assert world.cli("report", "--as-of", "2026-11-25", "--out", str(tmp_path / "big")) == 0
    sheet = load_workbook(tmp_path / "big" / "pcsync-2026-11-25.xlsx")["Lines"]
    assert sheet.max_row == 2 + 5 + 1
    assert (
        sheet.cell(sheet.max_row, 1).value
        == f"{len(stored)} lines: the first 5 here, all in the CSV"
    )
    every = pd.read_csv(
        tmp_path / "big" / "pcsync-2026-11-25-lines.csv", dtype=str, encoding="utf-8-sig"
    )
    assert every.equals(lines)


def test_a_report_killed_while_writing_leaves_the_reports_written_before(
    world, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    out = tmp_path / "reports"
    assert world.cli("report", "--as-of", "2026-11-25", "--out", str(out)) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    env = {
        **os.environ,
        "PCSYNC_CLIENT_SECRET": world.sim.config.client_secret,
        "PCSYNC_FAILPOINT": "report.lines:3=kill",  # killed while the lines CSV is written
    }
    command = [sys.executable, "-m", "sync.cli", "--config", str(world.settings.source)]
    killed = subprocess.run(
        [*command, "report", "--as-of", "2026-11-25", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert sorted(after) == sorted(before)
    for name, data in before.items():
        assert after[name] == data, f"{name} was changed by the killed run"
