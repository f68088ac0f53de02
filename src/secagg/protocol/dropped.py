"""Why a client was left out of a round: one shape for every result type's ``dropped``.

A :class:`Dropped` is a named 3-tuple ``(round, reason, detail)``, so code written against the
server session's ``dropped()`` tuples (``for i, (round_, reason, detail) in ...``) keeps working
while results, reports and the simulator speak of drops the same way.
"""

from __future__ import annotations

from typing import NamedTuple

from secagg.protocol.messages import Round
from secagg.reasons import DropReason

__all__ = ["Dropped"]


class Dropped(NamedTuple):
    """Client left out of the round: in which round, why (a stable code) and a detail."""

    round: Round
    reason: DropReason
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        """The report's form: ``{"round": "masked-input", "reason": "no-response", ...}``."""
        return {"round": self.round.label, "reason": self.reason.value, "detail": self.detail}
