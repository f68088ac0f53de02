"""Server session phases, the per-client record, and what a round leaves behind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

from secagg.protocol.messages import Round
from secagg.reasons import DropReason

__all__ = ["AggregationResult", "ClientRecord", "ServerPhase", "ServerView"]


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

    ``completed`` is the last round whose message from this client was accepted (-1: none);
    ``revealed`` says its nonce reveal (malicious round 0's second step) was accepted.
    A client dropped after its masked input arrived stays included in the sum; ``dropped``
    then only records that its later messages were not used.
    """

    index: int
    completed: int = -1
    revealed: bool = False
    dropped_in: Round | None = None
    reason: DropReason | None = None
    detail: str = ""

    @property
    def active(self) -> bool:
        """Still taking part (not dropped)."""
        return self.reason is None


@dataclass(frozen=True, slots=True)
class AggregationResult:
    """The outcome of a round: the sum of the included clients' inputs mod 2^bits."""

    total: npt.NDArray[np.unsignedinteger]
    included: tuple[int, ...]
    dropped: Mapping[int, tuple[Round, DropReason, str]]
    late: list[int]  # included, but dropped afterwards (their later messages went unused)
    bits: int


@dataclass(slots=True)
class ServerView:
    """Everything secret-bearing the server obtained, for auditing privacy invariants.

    ``seed_shares[v]`` / ``key_shares[v]`` are the holder indices whose share of b_v / s_sk_v
    the server received.
    """

    seed_shares: dict[int, set[int]] = field(default_factory=dict)
    key_shares: dict[int, set[int]] = field(default_factory=dict)
