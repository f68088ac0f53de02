"""Server session phases and the per-client record."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from secagg.protocol.messages import Round
from secagg.reasons import DropReason

__all__ = ["ClientRecord", "ServerPhase"]


class ServerPhase(Enum):
    """Which client messages the server is collecting."""

    COLLECT_KEYS = "collect-keys"
    COLLECT_REVEALS = "collect-reveals"  # malicious mode: nonces behind the seed commitments
    COLLECT_SHARES = "collect-shares"
    COLLECT_MASKED = "collect-masked"
    COLLECT_SIGNATURES = "collect-signatures"
    COLLECT_UNMASK = "collect-unmask"
    DONE = "done"
    ABORTED = "aborted"


@dataclass(slots=True)
class ClientRecord:
    """What the server knows of one client: the last round it completed and why it left.

    ``completed`` is the last round whose message from this client was accepted (-1: none).
    A client dropped after its masked input arrived stays included in the sum; ``dropped``
    then only records that its later messages were not used.
    """

    index: int
    completed: int = -1
    dropped_in: Round | None = None
    reason: DropReason | None = None
    detail: str = ""

    @property
    def active(self) -> bool:
        """Still taking part (not dropped)."""
        return self.reason is None
