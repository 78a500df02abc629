"""The published collections policy: generated from the enforced settings, never by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciliation.errors import ConfigError
from sync.cli import main
from sync.collections.policy_doc import FORMATS, build_document, describe_cron, render
from sync.config import Settings, load_settings

WriteConfig = Callable[..., Path]

POLICY = """
[schedule]
timezone = "Europe/Berlin"
collections = "0 7 * * 1-5"

[collections]
min_overdue_amount = "25"
exempt_customers = ["0f0f0f0f-aaaa-bbbb-cccc-000000000001"]

[[collections.stages]]
name = "reminder"
days_overdue = 1
action = "follow_up"

[[collections.stages]]
name = "final_notice"
days_overdue = 30
action = "follow_up"

[[collections.stages]]
name = "cut_off"
days_overdue = 60
action = "suspend"
min_amount = "100.50"

[collections.overrides."0f0f0f0f-aaaa-bbbb-cccc-000000000002"]
policy = "strategic"

[collections.policies.strategic]
min_overdue_amount = "1000"

[[collections.policies.strategic.stages]]
name = "courtesy_call"
days_overdue = 15
action = "follow_up"

[[collections.policies.strategic.stages]]
name = "strategic_suspend"
days_overdue = 120
action = "suspend"

[notifications]
sender_name = "Contoso Accounts"
reply_to = "ar@contoso.example"
payment_instructions = \"\"\"
Bank transfer to Contoso Ltd, IBAN DE00 1234
quoting your invoice number.\"\"\"
"""


def settings_from(write_config: WriteConfig, text: str) -> Settings:
    return load_settings(write_config(text), {})


def md(write_config: WriteConfig, text: str = POLICY, **options: str) -> str:
    return render(build_document(settings_from(write_config, text), **options), "md")


def test_every_stage_appears_in_order_with_its_days_minimum_and_consequence(
    write_config: WriteConfig,
) -> None:
    doc = build_document(settings_from(write_config, POLICY))
    default, strategic = doc.policies
    assert [(s.name, s.days_overdue, s.kind) for s in default.stages] == [
        ("Reminder", 1, "reminder"),
        ("Final notice", 30, "final_notice"),
        ("Cut off", 60, "suspension"),
    ]
    assert [str(s.minimum) for s in default.stages] == ["25", "25", "100.50"]
    assert [(s.name, s.days_overdue, str(s.minimum)) for s in strategic.stages] == [
        ("Courtesy call", 15, "1000"),
        ("Strategic suspend", 120, "1000"),
    ]
    text = render(doc, "text")
    assert text.index("From 1 day after") < text.index("From 30 days") < text.index("From 60 days")
    assert "when at least 100.50 is overdue in one currency" in text
    assert "may be suspended from 60 days after the due date" in text
    assert "we suspend your active Microsoft cloud subscriptions" in text


def test_exemptions_and_overrides_are_stated_generally_never_by_id(
    write_config: WriteConfig,
) -> None:
    text = md(write_config)
    assert "Individual arrangements may apply" in text
    assert "Some customers are exempt" in text
    assert "0f0f0f0f" not in text


def test_without_exemptions_the_document_claims_none(write_config: WriteConfig) -> None:
    text = md(
        write_config,
        POLICY.replace('exempt_customers = ["0f0f0f0f-aaaa-bbbb-cccc-000000000001"]', ""),
    )
    assert "Some customers are exempt" not in text
    assert "Individual arrangements may apply" in text


def test_a_zero_minimum_says_whatever_the_amount(write_config: WriteConfig) -> None:
    text = md(write_config, "")  # the shipped default stages, minimum 0
    assert text.count("whatever the amount overdue") == 3


def test_changing_a_stage_in_the_config_changes_the_document(write_config: WriteConfig) -> None:
    before = md(write_config)
    later = md(write_config, POLICY.replace("days_overdue = 30", "days_overdue = 45"))
    assert before != later
    assert "From 30 days" in before
    assert "From 30 days" not in later
    assert "From 45 days" in later


def test_a_new_stage_appears_in_the_document(write_config: WriteConfig) -> None:
    extra = POLICY.replace(
        '[[collections.stages]]\nname = "cut_off"',
        '[[collections.stages]]\nname = "second_reminder"\ndays_overdue = 45\n'
        'action = "follow_up"\n\n[[collections.stages]]\nname = "cut_off"',
    )
    before, after = md(write_config), md(write_config, extra)
    assert "Second reminder" not in before
    assert "**Second reminder** — From 45 days" in after


def test_suspension_and_reactivation_follow_the_schedule_and_new_commerce_rules(
    write_config: WriteConfig,
) -> None:
    text = md(write_config)
    assert "still billed while suspended" in text
    assert "expires at its term end" in text
    assert "next scheduled collections run (Monday to Friday at 07:00 Europe/Berlin time)" in text
    assert "pause collections" in text  # holds


def test_payment_instructions_are_quoted_with_their_line_breaks(
    write_config: WriteConfig,
) -> None:
    text = render(build_document(settings_from(write_config, POLICY)), "text")
    assert "Bank transfer to Contoso Ltd, IBAN DE00 1234\nquoting your invoice number." in text
    assert "Contoso Accounts, ar@contoso.example" in text


def test_without_payment_instructions_the_document_names_whom_to_ask(
    write_config: WriteConfig,
) -> None:
    text = md(write_config, "")
    assert "Please contact Accounts receivable at billing@example.com for payment details" in text


def test_payment_instructions_with_a_control_character_are_refused(
    write_config: WriteConfig,
) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(write_config, '[notifications]\npayment_instructions = "pay\\u001b[2J now"\n')
    assert any("payment_instructions" in p and "U+001B" in p for p in info.value.problems)


def test_only_the_named_policy_with_policy(write_config: WriteConfig) -> None:
    doc = build_document(settings_from(write_config, POLICY), policy="strategic")
    assert [p.name for p in doc.policies] == ["strategic"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_renders_every_stage(write_config: WriteConfig, fmt: str) -> None:
    out = render(build_document(settings_from(write_config, POLICY)), fmt)
    for name in ("Reminder", "Final notice", "Cut off", "Courtesy call", "Strategic suspend"):
        assert name in out
    if fmt == "html":
        assert out.startswith("<!DOCTYPE html>")
        assert "@media print" in out
        assert "<script" not in out
        assert "src=" not in out
        assert "href=" not in out


HOSTILE = POLICY.replace('name = "cut_off"', 'name = "Cut <script>alert(1)</script> [x](y) |"')


def test_html_escapes_a_configured_stage_name(write_config: WriteConfig) -> None:
    out = render(build_document(settings_from(write_config, HOSTILE)), "html")
    assert "<script>" not in out
    assert "Cut &lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_markdown_escapes_configured_text(write_config: WriteConfig) -> None:
    hostile = HOSTILE.replace("quoting your invoice number.", "- <b>*now*</b> & [pay](x)")
    out = md(write_config, hostile)
    assert "<script>" not in out
    assert "<b>" not in out
    assert r"Cut \<script\>alert(1)\</script\> \[x\](y) \|" in out
    assert r"\- \<b\>\*now\*\</b\> \& \[pay\](x)" in out


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 7 * * 1-5", "Monday to Friday at 07:00 UTC time"),
        ("30 6 * * *", "every day at 06:30 UTC time"),
        ("0 8 * * mon,wed,fri", "Monday, Wednesday and Friday at 08:00 UTC time"),
        ("0 */4 * * *", "on the schedule “0 */4 * * *”, UTC time"),
        ("0 7 1 * *", "on the schedule “0 7 1 * *”, UTC time"),
    ],
)
def test_the_collections_schedule_in_words(cron: str, words: str) -> None:
    assert describe_cron(cron, "UTC") == words


def test_cli_writes_the_document_to_a_file(
    write_config: WriteConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(POLICY)
    out_file = tmp_path / "policy.html"
    code = main(
        ["--config", str(path), "collections", "policy", "--format", "html", "--out", str(out_file)]
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out_file)
    assert "Final notice" in out_file.read_text(encoding="utf-8")


def test_cli_prints_a_named_policy(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(POLICY)
    code = main(["--config", str(path), "collections", "policy", "--policy", "strategic"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Courtesy call" in out
    assert "Final notice" not in out


def test_cli_unknown_policy_is_one_line_exit_2(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(POLICY)
    code = main(["--config", str(path), "collections", "policy", "--policy", "nope"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "pcsync: error: --policy: no [collections.policies.nope] in the config (defined: strategic)"
    ]
