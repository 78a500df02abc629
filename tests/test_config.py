"""Configuration: every problem reported at once, each naming its key; secrets from the env."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reconciliation.errors import ConfigError
from sync.config import CLOUDS, load_settings, resolve_config_path

ROOT = Path(__file__).resolve().parent.parent


def problems_of(path: Path, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ or {})
    return info.value.problems


def test_example_config_loads_with_documented_defaults() -> None:
    settings = load_settings(ROOT / "config.example.toml", {})
    assert settings.billing.markup_percent == Decimal(0)
    assert settings.billing.tax_percent == Decimal(0)
    assert settings.billing.payment_terms_days == 30
    assert settings.billing.microsoft_payment_terms_days == 60
    assert settings.collections.max_suspend_share == Decimal("0.25")
    assert [s.name for s in settings.collections.stages] == ["reminder", "final_notice", "suspend"]
    assert settings.partner_center.api_base_url == "https://api.partnercenter.microsoft.com"


def test_example_config_documents_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    from sync.config import Settings

    for section_name, section in Settings.model_fields.items():
        if section_name == "source":
            continue
        assert f"[{section_name}]" in text, section_name
        model = section.annotation
        for key in getattr(model, "model_fields", {}):
            if key in (
                "client_secret",
                "webhook_url",
                "columns",
                "overrides",
                "accepted_differences",
                "stages",
                "policies",
                "recipients",
            ):
                continue  # tables, shown by example
            if key == "smtp":
                assert "[notifications.smtp]" in text
                continue
            assert f"{key} =" in text, f"[{section_name}] {key} is not documented"


def test_missing_file_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml not found: copy config\.example\.toml"):
        load_settings(tmp_path / "nope.toml", {})


def test_invalid_toml_names_the_line(write_config) -> None:
    path = write_config("[billing\nmarkup_percent = 1")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 5"):
        load_settings(path, {})


def test_missing_required_keys(write_config) -> None:
    path = write_config(base="[partner_center]\n")
    assert problems_of(path) == (
        "[partner_center] tenant_id: required key is missing",
        "[partner_center] client_id: required key is missing",
    )


def test_missing_partner_center_section(write_config) -> None:
    path = write_config(base="")
    assert problems_of(path) == ("[partner_center]: required key is missing",)


def test_float_money_is_refused_with_the_expected_form(write_config) -> None:
    path = write_config("[billing]\nmarkup_percent = 10.5\n")
    assert problems_of(path) == (
        '[billing] markup_percent: expected a decimal string like "10", got 10.5',
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[foo]\nx = 1\n", "[foo]: unknown section (see config.example.toml)"),
        ('[billing]\nmarkup = "1"\n', "[billing] markup: unknown key (see config.example.toml)"),
        (
            '[billing]\npayment_terms_days = "30"\n',
            '[billing] payment_terms_days: expected an integer, got "30"',
        ),
        (
            "[billing]\npayment_terms_days = -1\n",
            "[billing] payment_terms_days: expected a number greater than or equal to 0, got -1",
        ),
        (
            '[billing]\nmarkup_percent = "ten"\n',
            '[billing] markup_percent: expected a decimal string like "10", got "ten"',
        ),
        (
            '[billing.overrides."c1"]\nmarkup_percent = 1.5\n',
            '[billing.overrides."c1"] markup_percent: expected a decimal string like "10", got 1.5',
        ),
        (
            "[collections]\nmax_suspend_share = 2\n",
            "[collections] max_suspend_share: expected a fraction between 0 and 1, got 2",
        ),
        (
            '[collections]\nexempt_customers = "c1"\n',
            '[collections] exempt_customers: expected an array, got "c1"',
        ),
        (
            '[[collections.stages]]\nname = "x"\ndays_overdue = 3\naction = "kill"\n',
            "[[collections.stages]] #1 action: expected 'follow_up' or 'suspend', got \"kill\"",
        ),
        (
            '[[collections.stages]]\nname = "x"\naction = "suspend"\n',
            "[[collections.stages]] #1 days_overdue: required key is missing",
        ),
        (
            '[[collections.stages]]\nname = "b"\ndays_overdue = 9\naction = "suspend"\n'
            '[[collections.stages]]\nname = "a"\ndays_overdue = 3\naction = "follow_up"\n',
            "[collections] stages: stages must be ordered by days_overdue, got [9, 3]",
        ),
        (
            '[collections.overrides."c1"]\npolicy = "gentle"\n',
            '[collections]: overrides."c1" names policy "gentle", which no '
            "[collections.policies.gentle] defines (defined: none defined)",
        ),
        (
            '[[collections.policies.gentle.stages]]\nname = "x"\ndays_overdue = 3\naction = "x"\n',
            "[[collections.policies.gentle.stages]] #1 action: expected 'follow_up' or 'suspend', "
            'got "x"',
        ),
        (
            '[notifications]\nwebhook_url = "https://hooks.example.com/x"\n',
            "[notifications] webhook_url: secrets never live in the file; remove it and set "
            "the environment variable named by webhook_url_env",
        ),
        (
            "[notifications.smtp]\nport = 25\n",
            "[notifications.smtp] host: required key is missing",
        ),
        (
            '[schedule]\ntimezone = "Mars/Olympus"\n',
            '[schedule] timezone: expected an IANA time zone like "Europe/Berlin", '
            'got "Mars/Olympus"',
        ),
        (
            '[schedule]\nsync = "every day"\n',
            '[schedule] sync: expected a cron expression like "0 */4 * * *" (or "" to disable), '
            'got "every day": expected 5 fields (minute hour day month weekday), got 2',
        ),
        (
            '[database]\nurl = "mysql://db/x"\n',
            '[database] url: expected a sqlite:/// or postgresql+psycopg:// URL, got "mysql"',
        ),
        (
            '[database]\nurl = "not a url"\n',
            '[database] url: expected a database URL like "sqlite:///pcsync.db", got "not a url"',
        ),
        (
            '[reports]\nformats = ["pdf"]\n',
            "[reports] formats #1: expected 'xlsx', 'html', 'csv' or 'json', got \"pdf\"",
        ),
        ("[payments.columns]\namount = 3\n", "[payments.columns] amount: expected a string, got 3"),
        ("[notify]\n", "[notify]: unknown section (see config.example.toml)"),
    ],
)
def test_each_bad_setting_names_its_key(write_config, extra: str, expected: str) -> None:
    assert problems_of(write_config(extra)) == (expected,)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "cloud",
            '"mars"',
            "[partner_center] cloud: expected 'public', 'usgov' or 'china', got \"mars\"",
        ),
        (
            "api_base_url",
            '"http://plain.example"',
            '[partner_center] api_base_url: expected an https URL like "https://example.com", '
            'got "http://plain.example"',
        ),
        (
            "timeout_seconds",
            "0",
            "[partner_center] timeout_seconds: expected a number greater than 0, got 0",
        ),
        (
            "line_items_api",
            '"v3"',
            "[partner_center] line_items_api: expected 'auto', 'v1' or 'v2', got \"v3\"",
        ),
        (
            "certificate_path",
            '"missing.pem"',
            "[partner_center]: certificate_path is set but certificate_thumbprint is missing",
        ),
    ],
)
def test_partner_center_settings_are_checked(
    write_config, key: str, value: str, expected: str
) -> None:
    assert problems_of(write_config(f"{key} = {value}\n")) == (expected,)


def test_all_problems_are_reported_together(write_config) -> None:
    path = write_config(
        'timeout_seconds = "x"\n[billing]\nmarkup_percent = 1.5\n'
        "[collections]\nmax_suspend_customers = -2\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert len(info.value.problems) == 3
    assert "3 problems" in str(info.value)
    assert "\n" not in str(info.value)


def test_secret_in_file_is_refused_without_echoing_it(write_config) -> None:
    path = write_config('client_secret = "<in-file-secret>"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert "client_secret: secrets never live in the file" in str(info.value)
    assert "<in-file-secret>" not in str(info.value)


def test_secret_comes_from_the_named_environment_variable(write_config) -> None:
    path = write_config('client_secret_env = "MY_PC_SECRET"\n')
    settings = load_settings(
        path, {"MY_PC_SECRET": "from-the-env-123", "PCSYNC_CLIENT_SECRET": "no"}
    )
    secret = settings.partner_center.client_secret
    assert secret is not None
    assert secret.get_secret_value() == "from-the-env-123"
    assert "from-the-env-123" not in repr(settings)
    assert "from-the-env-123" not in str(settings.model_dump())


def test_no_secret_is_fine_until_partner_center_is_called(write_config) -> None:
    assert load_settings(write_config(), {}).partner_center.client_secret is None


@pytest.mark.parametrize("cloud", ["public", "usgov", "china"])
def test_cloud_presets_set_all_urls(write_config, cloud: str) -> None:
    pc = load_settings(write_config(f'cloud = "{cloud}"\n'), {}).partner_center
    preset = CLOUDS[cloud]
    assert (pc.authority_host, pc.api_base_url, pc.graph_base_url) == (
        preset.authority_host,
        preset.api_base_url,
        preset.graph_base_url,
    )
    assert pc.partner_center_scope == preset.partner_center_scope
    assert pc.endpoints() == preset  # what the connector is given: the preset itself


def test_urls_override_the_preset(write_config) -> None:
    pc = load_settings(
        write_config('cloud = "china"\napi_base_url = "https://127.0.0.1:8443/"\n'), {}
    ).partner_center
    assert pc.api_base_url == "https://127.0.0.1:8443"
    assert pc.authority_host == CLOUDS["china"].authority_host
    endpoints = pc.endpoints()
    assert endpoints.api_base_url == "https://127.0.0.1:8443"
    assert endpoints.graph_base_url == CLOUDS["china"].graph_base_url
    assert endpoints.v2_billing_exports is False  # the cloud's, whatever the URLs say


def test_relative_paths_are_relative_to_the_config_file(write_config, tmp_path: Path) -> None:
    settings = load_settings(write_config(), {})
    assert settings.database.url == f"sqlite:///{tmp_path / 'pcsync.db'}"
    assert settings.partner_center.token_cache_path == tmp_path / "pcsync-token-cache.json"
    assert settings.reports.out_dir == tmp_path / "reports"


def test_billing_overrides_are_per_customer(write_config) -> None:
    settings = load_settings(
        write_config(
            '[billing.overrides."c-1"]\nmarkup_percent = "12.5"\npayment_terms_days = 14\n'
        ),
        {},
    )
    override = settings.billing.overrides["c-1"]
    assert override.markup_percent == Decimal("12.5")
    assert override.payment_terms_days == 14


def test_tax_percent_defaults_to_zero_and_has_per_customer_overrides(write_config) -> None:
    settings = load_settings(
        write_config(
            '[billing]\ntax_percent = "19"\n[billing.overrides."c-1"]\ntax_percent = "0"\n'
        ),
        {},
    )
    assert settings.billing.tax_percent == Decimal("19")
    assert settings.billing.overrides["c-1"].tax_percent == Decimal(0)
    assert settings.billing.overrides["c-1"].markup_percent is None  # keeps the default
    assert load_settings(write_config(), {}).billing.tax_percent == Decimal(0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[billing]\nmarkup_percent = "-250"\n',
            '[billing] markup_percent: expected a percentage from 0 to 1000, got "-250"',
        ),
        (
            '[billing]\ntax_percent = "-1"\n',
            '[billing] tax_percent: expected a percentage from 0 to 100, got "-1"',
        ),
        (
            '[billing]\ntax_percent = "100.5"\n',
            '[billing] tax_percent: expected a percentage from 0 to 100, got "100.5"',
        ),
        (
            "[billing]\ntax_percent = 20.0\n",
            '[billing] tax_percent: expected a decimal string like "10", got 20.0',
        ),
        (
            '[billing.overrides."c1"]\nmarkup_percent = "-5"\n',
            '[billing.overrides."c1"] markup_percent: expected a percentage from 0 to 1000, '
            'got "-5"',
        ),
        (
            '[billing.overrides."c1"]\ntax_percent = "250"\n',
            '[billing.overrides."c1"] tax_percent: expected a percentage from 0 to 100, got "250"',
        ),
        (
            "[billing]\npayment_terms_days = 999999999\n",
            "[billing] payment_terms_days: expected a number less than or equal to 3660, "
            "got 999999999",
        ),
    ],
)
def test_billing_percentages_and_terms_are_bounded(write_config, extra: str, expected: str) -> None:
    assert problems_of(write_config(extra)) == (expected,)


def test_a_negative_markup_is_a_one_line_error_naming_the_key(write_config, capsys) -> None:
    from sync.cli import main

    path = write_config('[billing]\nmarkup_percent = "-250"\n')
    assert main(["--config", str(path), "init"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"pcsync: error: config file {path}: [billing] markup_percent: expected a "
        'percentage from 0 to 1000, got "-250"'
    )


def test_config_path_precedence() -> None:
    assert resolve_config_path("a.toml", {"PCSYNC_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"PCSYNC_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("pcsync.toml")


def test_the_webhook_url_comes_from_the_environment_and_is_never_echoed(write_config) -> None:
    path = write_config('[notifications]\nwebhook_url_env = "HOOK"\n')
    url = "https://hooks.example.com/services/T0/B0/abcdefgh"
    settings = load_settings(path, {"HOOK": url})
    assert settings.notifications.webhook_url is not None
    assert settings.notifications.webhook_url.get_secret_value() == url
    assert "abcdefgh" not in repr(settings)
    (problem,) = problems_of(path, {"HOOK": "http://hooks.example.com/services/T0/B0/abcdefgh"})
    assert problem == "[notifications] webhook_url_env: $HOOK must hold an https URL"
