"""``pcsync check``: passes against the simulator, and names the remedy for each failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main
from tests.test_simulator import _certificate
from tests.test_sync import setup


def _check(settings: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["--config", str(settings.source), "check", "--json"])
    document = json.loads(capsys.readouterr().out)
    return code, {item["name"]: item for item in document["items"]}


def _ready(sim: Any, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings, engine, _ = setup(sim, db_url, tmp_path)
    engine.dispose()
    monkeypatch.setenv("PCSYNC_CLIENT_SECRET", sim.config.client_secret)
    return settings


def test_check_passes_against_the_simulator_and_starts_nothing(
    start_simulator, db_url, tmp_path, monkeypatch, capsys
) -> None:
    sim = start_simulator()
    settings = _ready(sim, db_url, tmp_path, monkeypatch)
    code, items = _check(settings, capsys)
    assert code == 0, items
    assert {name: item["outcome"] for name, item in items.items()} == {
        "config": "ok",
        "database": "ok",
        "sign-in (tokens)": "ok",
        "customers and subscriptions": "ok",
        "invoices": "ok",
        "billing export (Graph)": "ok",
        "clock": "ok",
    }
    assert sim.operations == {}  # the Graph probe started no export
    assert not any(method != "GET" for method, path, _ in sim.requests if "/v1/" in path)
    capsys.readouterr()
    assert main(["--config", str(settings.source), "check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(items)
    assert all(line.startswith("ok") for line in lines)


def _broken_client(sim: Any, settings: Any) -> None:
    text = settings.source.read_text().replace(sim.config.client_id, "11111111-2222-3333-4444-5555")
    settings.source.write_text(text)


@pytest.mark.parametrize(
    ("failure", "item", "remedy"),
    [
        ("unknown client", "sign-in (tokens)", "client_id is not an app in this tenant"),
        ("wrong secret", "sign-in (tokens)", "client secret is wrong"),
        ("not in App management", "customers and subscriptions", "App management"),
        ("no Graph permission", "billing export (Graph)", "PartnerBilling.Read.All"),
        ("untrusted certificate", "sign-in (tokens)", "REQUESTS_CA_BUNDLE"),
    ],
)
def test_check_fails_with_the_remedy_for_each_failure(
    start_simulator, tmp_path, monkeypatch, capsys, failure: str, item: str, remedy: str
) -> None:
    sim = start_simulator(
        partner_center_app=failure != "not in App management",
        graph_billing_permission=failure != "no Graph permission",
    )
    settings = _ready(sim, f"sqlite:///{tmp_path / 'pcsync.db'}", tmp_path, monkeypatch)
    if failure == "unknown client":
        _broken_client(sim, settings)
    if failure == "wrong secret":
        monkeypatch.setenv("PCSYNC_CLIENT_SECRET", "not-the-secret")
    if failure == "untrusted certificate":
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    code, items = _check(settings, capsys)
    assert code == 1, items
    assert items[item]["outcome"] == "fail", items
    assert remedy in items[item]["remedy"]
    failed = [name for name, found in items.items() if found["outcome"] == "fail"]
    also = ["invoices"] if failure == "not in App management" else []
    assert failed == [item, *also]


def test_check_warns_thirty_days_before_the_certificate_expires(
    start_simulator, tmp_path, monkeypatch, capsys
) -> None:
    pem, thumbprint = _certificate(tmp_path)  # valid for one day
    sim = start_simulator(certificate_thumbprint=thumbprint)
    settings = _ready(sim, f"sqlite:///{tmp_path / 'pcsync.db'}", tmp_path, monkeypatch)
    (tmp_path / "app.pem").write_text(pem)
    settings.source.write_text(
        settings.source.read_text().replace(
            "[partner_center]\n",
            f'[partner_center]\ncertificate_path = "{tmp_path / "app.pem"}"\n'
            f'certificate_thumbprint = "{thumbprint}"\n',
        )
    )
    monkeypatch.delenv("PCSYNC_CLIENT_SECRET")
    code, items = _check(settings, capsys)
    assert code == 0, items  # a warning is not a failure
    assert items["certificate"]["outcome"] == "warn"
    assert "upload a new certificate" in items["certificate"]["remedy"]
    assert items["sign-in (tokens)"]["outcome"] == "ok"
