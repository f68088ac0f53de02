"""A round's client slots, a stream's upload, and the events streams hand the round driver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secagg.protocol.config import RoundConfig
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import DropReason
from secagg.transport.codec import VectorAssembler
from secagg.transport.lobby import ClientConn

__all__ = ["PHASE_NAMES", "Event", "Slots", "Upload"]

PHASE_NAMES = {
    ServerPhase.COLLECT_KEYS: "advertise-keys",
    ServerPhase.COLLECT_REVEALS: "reveal-nonce",
    ServerPhase.COLLECT_SHARES: "share-keys",
    ServerPhase.COLLECT_MASKED: "masked-input",
    ServerPhase.COLLECT_SIGNATURES: "consistency-check",
    ServerPhase.COLLECT_UNMASK: "unmasking",
}


@dataclass
class Slots:
    """One round's client slots: who holds each index, and when it was welcomed.

    Until a slot's client has advertised its keys (round 0) nothing is bound to the index
    except the Welcome; a holder that goes idle for ``keys_timeout`` or vanishes gives its
    slot to the next waiting client, so silent joiners cannot hold a round hostage.
    ``vacant`` slots lost their holder; they are dropped when round 0 ends unless refilled.
    """

    number: int
    config: RoundConfig
    holders: dict[int, ClientConn]
    welcomed_at: dict[int, float] = field(default_factory=dict)
    vacant: dict[int, tuple[DropReason, str]] = field(default_factory=dict)
    refill: bool = False
    task: bytes | None = None  # what every client of the round is handed after Welcome
    task_frames: list[bytes] | None = None

    def names(self) -> dict[int, str]:
        return {i: c.name for i, c in self.holders.items()}


Event = tuple[str, ClientConn, Any, Callable[[], None] | None]


class Upload:
    """A stream's masked-input upload: its assembler and its slot in the assembly semaphore."""

    def __init__(self) -> None:
        self.assembler: VectorAssembler | None = None
        self.sem: asyncio.Semaphore | None = None
        self.holding = False

    def release(self) -> None:
        if self.holding and self.sem is not None:
            self.sem.release()
        self.holding = False
