"""The one console every command prints through, and how peer-controlled text reaches it."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

__all__ = ["console", "err_console", "plain"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def plain(line: str) -> Text:
    """``line`` as literal console text: no markup, no emoji codes, no control characters.

    Log lines quote names, reasons and details chosen by the other side of a connection; a
    name like ``[/]`` must print as itself, not end the process with a markup error.
    """
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return Text(safe)
