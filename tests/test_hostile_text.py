"""Text from Partner Center and from operators is stored as sent and shown safely.

A customer name, an approval note or a ``--by`` name may hold Rich markup, escape
sequences or control characters; the terminal gets them as plain, inert text.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.world import AS_OF, World

NOTE = "paid [/] [bold red]soon[/bold red] \x1b[2J\x1b]0;pwned\x07 :warning: \x9b31m"
BY = "[link=https://x.example]ana[/link]\r\x1b[1A"


def test_markup_and_escape_sequences_in_an_approval_note_never_break_audit(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one table row a line
    assert world.cli("collections", "approve", world.never, "--note", NOTE, "--by", BY) == 0
    out, _ = capsys.readouterr()
    assert "\x1b" not in out
    assert "\r" not in out
    assert world.cli("audit", "--customer", world.never) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "[/]" in out  # shown literally, not taken for markup
    assert "[bold red]soon[/bold red]" in out
    assert "[link=https://x.example]ana[/link]" in out
    assert ":warning:" in out
    assert not any(ch in out for ch in "\x1b\x07\x9b\r")
    stored = world.audit(world.never)  # kept as sent
    assert any(e["actor"] == BY and NOTE in e["details"].values() for e in stored)


def test_customer_names_with_escape_sequences_print_inert(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    name = "Evil\x1b]0;title\x07 [b]Co[/b]\x1b[31m\nLtd\x01"
    with world.engine.begin() as c:  # as Partner Center sent it
        c.execute(
            sa.text("UPDATE customers SET name = :name WHERE id = :id"),
            {"name": name, "id": world.never},
        )
    capsys.readouterr()
    assert world.cli("-v", "collections", "plan", "--as-of", AS_OF) == 0
    assert world.cli("collections", "approve", world.never) == 0
    assert world.cli("collections", "history", "--customer", world.never) == 0
    assert world.cli("collections", "apply", "--as-of", AS_OF) in (0, 1)
    out, err = capsys.readouterr()
    assert "Evil [b]Co[/b] Ltd" in out
    assert not any(ch in out + err for ch in "\x1b\x07\x01")
