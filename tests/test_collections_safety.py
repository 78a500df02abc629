"""Collections against Microsoft's real behaviour: today only, ownership, lost answers, holds,
limits over time, sandboxed templates.

Against the simulator on SQLite and PostgreSQL, through the command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.world import AS_OF, World


def _no_azure_refusal(world: World, customer: str) -> None:
    for sub in world.subs_of(customer):
        sub.pop("_hasActiveAzureSubscriptions", None)


@pytest.mark.parametrize("as_of", [AS_OF, "2027-06-01"], ids=["past", "future"])
def test_apply_refuses_any_date_but_today(world: World, as_of: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert world.cli("collections", "approve", world.never, "--as-of", as_of) == 0
    capsys.readouterr()
    assert world.cli("collections", "apply", "--as-of", as_of, "--apply") == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"pcsync: error: --as-of {as_of} is in the ")
    assert "acts on today" in error
    assert world.patches() == 0
    assert world.cli("collections", "apply", "--as-of", as_of) == 0  # a dry run may look
    assert world.patches() == 0


def test_a_template_calling_os_popen_fails_in_the_sandbox(
    world: World, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    proof = tmp_path / "ran"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "suspend.txt.j2").write_text(
        "Subject: hi\n\n{{ cycler.__init__.__globals__.os.popen('touch " + str(proof) + "') }}\n"
    )
    (templates / "follow_up.txt.j2").write_text("Subject: hi\n\n{{ ''.__class__.__mro__ }}\n")
    world.configure(f'[notifications]\ntemplates_dir = "{templates}"\nout_dir = "{tmp_path}"')
    capsys.readouterr()
    assert world.cli("collections", "notify", "--as-of", AS_OF) == 2
    err = capsys.readouterr().err
    assert "notice template" in err
    assert "is unsafe" in err  # refused by the sandbox, not by chance
    assert not proof.exists()
