"""The README's screenshots: every picture docs/screenshots.sh writes is in docs/, shown by
the README, a real PNG, and small enough for a repository (under 400 KB)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_screenshot_is_in_docs_small_and_shown_by_the_readme() -> None:
    script = (ROOT / "docs" / "screenshots.sh").read_text(encoding="utf-8")
    written = set(re.findall(r'\$root/docs/([\w-]+\.png)"', script))
    written |= {f"{name}.png" for name in re.findall(r"^sheet \w+ ([\w-]+)$", script, re.M)}
    assert {
        "report-screenshot.png",
        "report-margin-screenshot.png",
        "statement-screenshot.png",
        "xlsx-screenshot.png",
        "xlsx-lines-screenshot.png",
        "xlsx-margin-screenshot.png",
    } <= written
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"!\[[^\]]*\]\(docs/([\w-]+\.png)\)", readme))
    assert written <= shown
    for name in shown:
        picture = ROOT / "docs" / name
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert picture.stat().st_size < 400_000, name


def test_the_readme_quotes_the_demo_policy_as_pcsync_renders_it(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from sync.cli.demo import DEMO_SECRET_ENV, _demo_config
    from sync.collections.policy_doc import build_document, render
    from sync.config import load_settings

    sim = SimpleNamespace(config=SimpleNamespace(tenant_id="t", client_id="c"))
    config = tmp_path / "pcsync.toml"
    config.write_text(_demo_config(sim, "https://127.0.0.1:1"), encoding="utf-8")
    policy = render(build_document(load_settings(config, {DEMO_SECRET_ENV: "x"})), "md")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = readme.split("its stages as written:\n\n```markdown\n", 1)[1].split("```", 1)[0]
    assert quoted.count("\n1. ") + quoted.count("\n2. ") + quoted.count("\n3. ") == 3
    assert quoted.strip() in policy
