"""Real MSAL and the connector against the running simulator, over TLS."""

from __future__ import annotations

import os
import stat
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.partner_center import (
    ClientOptions,
    Credentials,
    Endpoints,
    PartnerCenter,
    Provider,
    SubscriptionStatus,
)
from connectors.partner_center.errors import ApiError, AuthenticationError, ExportError
from connectors.simulator.data import Scale
from connectors.simulator.faults import FaultPlan


def snapshot(client: PartnerCenter) -> dict[str, object]:
    """Everything the connector can read, as comparable values."""
    customers = list(client.customers())
    subscriptions = {
        c.id: sorted((s.id, s.status, s.quantity) for s in client.subscriptions(c.id))
        for c in customers
    }
    invoices = list(client.invoices())
    lines = {
        invoice.id: [
            (
                line.customer_id,
                line.subscription_id,
                line.subtotal,
                line.tax_total,
                line.total_for_customer,
                line.currency,
            )
            for line in client.line_items(invoice)
        ]
        for invoice in invoices
    }
    return {
        "customers": [(c.id, c.name, c.domain) for c in customers],
        "subscriptions": subscriptions,
        "invoices": [(i.id, i.total_charges, i.currency, i.invoice_date) for i in invoices],
        "lines": lines,
    }


def test_connector_reads_exactly_the_simulators_data(start_simulator, connect_to) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    data = snapshot(client)
    assert [c[0] for c in data["customers"]] == [c["id"] for c in sim.data.customers]  # type: ignore[index]
    for customer_id, subs in data["subscriptions"].items():  # type: ignore[attr-defined]
        assert [s[0] for s in subs] == sorted(s["id"] for s in sim.data.subscriptions[customer_id])
    assert len(data["invoices"]) == len(sim.data.invoices)  # type: ignore[arg-type]
    for invoice_id, total, currency, _ in data["invoices"]:  # type: ignore[attr-defined]
        lines = data["lines"][invoice_id]  # type: ignore[index]
        assert len(lines) == sim.data.line_count(sim.data.invoice(invoice_id))
        assert sum(line[4] for line in lines) == total
        assert {line[5] for line in lines} == {currency}
    # The simulator's anchor is after January 2024: every invoice came through the v2 exports.
    assert any(path.startswith("/blobs/") for _, path, _ in sim.requests)


def test_lines_come_from_the_api_microsoft_serves_their_period_on(
    start_simulator, connect_to
) -> None:
    """January 2024 from v1 only, February 2024 on from the v2 export only."""
    sim = start_simulator(
        scale=Scale(customers=6, invoices=2, lines_per_invoice=4500),
        anchor=date(2024, 3, 10),
        page_cap=0,
    )
    client = connect_to(sim)
    invoices = {i.billing_period_start: i for i in client.invoices() if i.currency == "USD"}
    january, february = invoices[date(2024, 1, 1)], invoices[date(2024, 2, 1)]
    assert client.line_item_source(january, Provider.ONE_TIME) == "v1"
    assert client.line_item_source(february, Provider.ONE_TIME) == "v2"
    assert client.line_item_source(february, Provider.OFFICE) == "v1"  # legacy: v1 always
    for invoice in (january, february):
        lines = list(client.line_items(invoice))
        assert len(lines) == 4500
        assert sum(line.total_for_customer for line in lines) == invoice.total_charges
        assert {line.source for line in lines} == {"v1" if invoice is january else "v2"}
    pages = [h for _, p, h in sim.requests if f"/{january.id}/lineitems" in p]
    assert len(pages) == 3  # 2000 + 2000 + 500, following the continuation tokens
    assert "MS-ContinuationToken" in pages[1]
    # The simulator refuses what Microsoft refuses: nothing may depend on leniency.
    with pytest.raises(ApiError, match="February 2024"):
        list(client.v1_line_items(february.id, Provider.ONE_TIME, currency="USD"))
    with pytest.raises(ApiError, match="before February 2024"):
        list(client.v2_line_items(january.id, currency="USD"))


def test_an_invoice_export_is_written_once_and_served_to_every_export(
    start_simulator, connect_to
) -> None:
    sim = start_simulator(scale=Scale(customers=3, invoices=1, lines_per_invoice=300))
    client = connect_to(sim)
    invoice = next(iter(client.invoices()))
    sim.prepare_invoice_export(invoice.id)  # as the benchmarks do, before any client reads
    files = sorted(sim.blob_dir.iterdir())
    written = [f.stat().st_mtime_ns for f in files]
    first = list(client.v2_line_items(invoice.id, currency=invoice.currency))
    second = list(
        client.v2_line_items(invoice.id, currency=invoice.currency)
    )  # a new export operation of the same invoice
    assert len(first) == 300
    assert [line.raw_text for line in second] == [line.raw_text for line in first]
    assert sorted(sim.blob_dir.iterdir()) == files  # no new file for either export
    assert [f.stat().st_mtime_ns for f in files] == written


def test_faults_do_not_change_what_is_read(start_simulator, connect_to) -> None:
    clean = snapshot(connect_to(start_simulator()))
    faulty_sim = start_simulator(
        faults=FaultPlan(rate=0.3, seed=11, slow_seconds=0.01), blob_lines=5
    )
    client = connect_to(faulty_sim, max_retries=8)
    assert snapshot(client) == clean
    assert client.http.stats.retries > 0


def test_throttling_is_met_with_retry_after(start_simulator, connect_to) -> None:
    sim = start_simulator(rate_limit=4, throttle_window_seconds=1, retry_after=1)
    client = connect_to(sim)
    customers = list(client.customers())
    counts = [len(list(client.subscriptions(c.id))) for c in customers[:6]]
    assert counts == [len(sim.data.subscriptions[c.id]) for c in customers[:6]]
    assert client.http.stats.throttled > 0


def test_wrong_secret_is_a_clear_authentication_error(start_simulator, connect_to) -> None:
    sim = start_simulator()
    wrong = "not-the-right-secret-value"
    with pytest.raises(AuthenticationError) as info:
        list(connect_to(sim, secret=wrong).customers())
    assert info.value.code == "AADSTS7000215"
    assert "Invalid client secret provided" in str(info.value)
    assert wrong not in str(info.value)


def test_unknown_tenant_names_the_tenant(start_simulator, tmp_path: Path) -> None:
    sim = start_simulator()
    client = PartnerCenter.connect(
        Credentials("nobody.onmicrosoft.com", sim.config.client_id, sim.config.client_secret),
        Endpoints(sim.base_url, sim.base_url, sim.base_url),
        ClientOptions(token_cache_path=tmp_path / "c.json"),
    )
    with pytest.raises(
        AuthenticationError, match=r"AADSTS90002: Tenant 'nobody\.onmicrosoft\.com'"
    ):
        list(client.customers())


def _certificate(folder: Path) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pcsync-app")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    return pem.decode(), cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - x5t is SHA-1 by spec


def test_certificate_credential_signs_in(start_simulator, tmp_path: Path) -> None:
    pem, thumbprint = _certificate(tmp_path)
    sim = start_simulator(certificate_thumbprint=thumbprint)
    client = PartnerCenter.connect(
        Credentials(sim.config.tenant_id, sim.config.client_id, None, pem, thumbprint),
        Endpoints(sim.base_url, sim.base_url, sim.base_url),
        ClientOptions(token_cache_path=tmp_path / "c.json"),
    )
    assert len(list(client.customers())) == len(sim.data.customers)


def test_token_cache_is_private_and_reused_across_runs(
    start_simulator, connect_to, tmp_path
) -> None:
    sim = start_simulator()
    list(connect_to(sim).customers())
    cache = tmp_path / "token-cache.json"
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    list(connect_to(sim).customers())  # a new process-like client, same cache file
    token_posts = [p for m, p, _ in sim.requests if p.endswith("/oauth2/v2.0/token")]
    assert len(token_posts) == 1


def test_expired_token_is_refreshed_once(start_simulator, connect_to) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    list(client.customers())
    sim.revoke_tokens()
    assert len(list(client.customers())) == len(sim.data.customers)
    token_posts = [p for m, p, _ in sim.requests if p.endswith("/oauth2/v2.0/token")]
    assert len(token_posts) == 2


def test_suspend_then_reactivate_round_trip(start_simulator, connect_to) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    customer = sim.data.customers[1]["id"]
    sub = next(s for s in client.subscriptions(customer) if s.billing_type == "license")
    suspended = client.set_status(customer, sub.id, SubscriptionStatus.SUSPENDED)
    assert suspended.changed
    assert suspended.before.status is SubscriptionStatus.ACTIVE
    assert suspended.after.status is SubscriptionStatus.SUSPENDED
    assert suspended.after.suspension_reasons
    assert suspended.after.etag != suspended.before.etag
    patch = next(h for m, _, h in sim.requests if m == "PATCH")
    assert patch["If-Match"] == sub.etag
    again = client.set_status(customer, sub.id, SubscriptionStatus.SUSPENDED)
    assert not again.changed  # already suspended: nothing sent
    assert len([m for m, _, _ in sim.requests if m == "PATCH"]) == 1
    back = client.set_status(customer, sub.id, SubscriptionStatus.ACTIVE)
    assert back.after.status is SubscriptionStatus.ACTIVE


def test_microsoft_refusals_are_clear_errors(start_simulator, connect_to) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    customer = sim.data.customers[0]["id"]
    azure = next(s for s in client.subscriptions(customer) if s.billing_type == "usage")
    with pytest.raises(ApiError) as info:
        client.set_status(customer, azure.id, SubscriptionStatus.SUSPENDED)
    assert (info.value.status, info.value.code) == (403, "900115")
    assert "Azure plan cannot be moved to suspended state" in str(info.value)
    deleted = sim.data.subscriptions[customer][0]
    deleted["status"] = "deleted"
    with pytest.raises(ApiError, match="2011"):
        client.set_status(customer, deleted["id"], SubscriptionStatus.SUSPENDED)


def test_a_lost_patch_answer_is_replayed_not_repeated(start_simulator, connect_to) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    customer = sim.data.customers[1]["id"]
    sub = next(s for s in client.subscriptions(customer) if s.billing_type == "license")
    sim.config.faults = FaultPlan(rate=1.0, kinds=("reset",))
    url = f"{sim.base_url}/v1/customers/{customer}/subscriptions/{sub.id}"
    reply = client.http.send_json(
        "PATCH",
        url,
        {**sub.raw, "status": "suspended"},
        scope=client._scope,
        family="subscriptions",
        headers={"If-Match": sub.etag or ""},
    )
    assert reply.body["status"] == "suspended"
    patches = [h["MS-RequestId"] for m, _, h in sim.requests if m == "PATCH"]
    assert len(patches) == 2
    assert len(set(patches)) == 1  # the retry reused the request id, and was answered from replay
    assert sim.data.find_subscription(customer, sub.id)["_version"] == 1  # type: ignore[index]


def test_failed_export_is_reported(start_simulator, connect_to) -> None:
    sim = start_simulator()
    failing = sim.data.invoices[-1]
    sim.config.failing_exports = (failing.id,)
    with pytest.raises(ExportError, match="5000 No data available"):
        list(connect_to(sim).v2_line_items(failing.id, currency=failing.currency))


def test_storage_never_sees_the_bearer_token(start_simulator, connect_to) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    invoice = next(iter(client.invoices()))
    assert list(client.v2_line_items(invoice.id, currency=invoice.currency))
    blob_requests = [h for _, p, h in sim.requests if p.startswith("/blobs/")]
    assert blob_requests
    assert all("Authorization" not in h for h in blob_requests)


def test_unbilled_lines_for_the_open_period(start_simulator, connect_to) -> None:
    sim = start_simulator()
    lines = list(connect_to(sim).unbilled_line_items("USD"))
    assert lines
    assert {line.invoice_id for line in lines} == {"unbilled"}
    assert all(line.charge_start_date and line.charge_start_date.month == 11 for line in lines)
    assert sum(line.subtotal for line in lines) > Decimal(0)


def test_sample_payments_cover_the_payer_profiles(start_simulator) -> None:
    sim = start_simulator()
    rows = sim.data.payments_csv().splitlines()
    assert rows[0] == "customer,date,amount,currency,reference,invoice"
    customers = Counter(row.split(",")[0] for row in rows[1:])
    never = sim.data.customers[4]
    assert never["id"] not in customers
    assert never["companyProfile"]["domain"] not in customers
    assert len({row.split(",")[4] for row in rows[1:]}) == len(rows) - 1  # references unique


def test_a_customer_whose_relationship_ended_is_left_out_of_the_list(
    start_simulator, connect_to
) -> None:
    sim = start_simulator()
    client = connect_to(sim)
    ended = sim.data.customers[3]["id"]
    sim.data.unlisted.add(ended)
    listed = [c.id for c in client.customers()]
    assert listed == [c["id"] for c in sim.data.customers if c["id"] != ended]  # pages too
    with pytest.raises(ApiError) as info:
        list(client.subscriptions(ended))
    assert (info.value.status, info.value.code) == (403, "20002")
    sim.data.unlisted.discard(ended)
    assert ended in {c.id for c in client.customers()}
    assert list(client.subscriptions(ended))
