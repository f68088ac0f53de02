"""Peer-controlled text reaches a terminal console as itself, never as markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from secagg.cli.console import plain


@pytest.mark.parametrize("name", ["[/]", "[bold red]x[/]", "[link=file:///etc]y", ":smile:"])
def test_markup_in_peer_text_prints_literally_on_a_terminal(name: str) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=200)
    console.log(plain(f"dropped {name!r} (no-response)"))
    console.print(plain(name))
    assert f"dropped {name!r} (no-response)" in out.getvalue()
    assert name in out.getvalue()


def test_control_characters_are_shown_escaped() -> None:
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system=None).print(plain("a\x1b[2Jb\nc"))
    assert "\x1b" not in out.getvalue()
    assert "a\\x1b[2Jb\\nc" in out.getvalue()
