"""``--log-format json``: one JSON object per log line, for log shippers.

Each object has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and, when the line
is about a round, ``round`` (its number) and ``round_id`` (hex). The server's log lines carry
only names, indices, counts, sizes and reason codes, never keys, shares or vectors; this module
adds nothing else.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["json_logger"]

_ROUND = re.compile(r"^round (\d+):")


def json_logger(
    logger: str,
    round_id: Callable[[], str | None] = lambda: None,
    stream: TextIO | None = None,
) -> Callable[[str], None]:
    """A ``log(line)`` function writing JSON lines to ``stream`` (stderr by default)."""

    def log(line: str) -> None:
        record: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": logger,
            "message": line,
        }
        match = _ROUND.match(line)
        if match is not None:
            record["round"] = int(match.group(1))
            record["round_id"] = round_id()
        out = stream or sys.stderr
        out.write(json.dumps(record, ensure_ascii=True) + "\n")
        out.flush()

    return log
