"""The report of one aggregation round: who was included, who dropped and why, timings, bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.encoding import DecodedResult, Encoder
from secagg.encoding.round_spec import RAW_SPEC_DIGEST
from secagg.errors import ConfigError

__all__ = ["RoundReport", "finite"]


@dataclass
class RoundReport:
    """What happened in one aggregation round (names are the clients' self-declared names).

    ``status`` is ``complete``, ``aborted`` or ``interrupted`` (the server was stopped);
    ``rejected`` names joiners that were turned away or lost their slot before round 0 ended.
    """

    round: int
    status: str = "aborted"
    abort_reason: str | None = None
    abort_detail: str = ""
    round_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    included: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    dropped_in: dict[str, dict[str, str]] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    server_compute: dict[str, float] = field(default_factory=dict)
    # The server session's named steps (unmasking: reconstruct, remove-masks), via its observer.
    server_steps: dict[str, float] = field(default_factory=dict)
    bytes_received: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    total: npt.NDArray[np.unsignedinteger] | None = None
    task_digest: str | None = None  # hex context digest of the task handed out, if any
    spec: bytes = b""  # the round spec announced to the clients (empty: raw integers)
    spec_digest: bytes = RAW_SPEC_DIGEST  # its digest, as bound into the round config

    def decode(self, encoder: Encoder) -> DecodedResult:
        """The round's sum decoded with ``encoder``, which must have the round's spec.

        Raises :class:`SpecMismatchError` for an encoder with another spec and
        :class:`ConfigError` when the round produced no sum.
        """
        if self.total is None or not self.included:
            raise ConfigError(f"round {self.round} produced no sum (status {self.status})")
        return encoder.decode(self.total, len(self.included), spec_digest=self.spec_digest)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (without the sum itself)."""
        return {
            "round": self.round,
            "status": self.status,
            "abort_reason": self.abort_reason,
            "abort_detail": self.abort_detail,
            "round_id": self.round_id,
            "task_digest": self.task_digest,
            **self.config,
            "spec": json.loads(self.spec) if self.spec else None,
            "spec_digest": self.spec_digest.hex(),
            "included": self.included,
            "dropped": self.dropped,
            "dropped_in": self.dropped_in,
            "late": self.late,
            "rejected": self.rejected,
            "timings": self.timings,
            "server_compute": self.server_compute,
            "server_steps": self.server_steps,
            "bytes": {
                phase: {
                    "received": self.bytes_received.get(phase, 0),
                    "sent": self.bytes_sent.get(phase, 0),
                }
                for phase in dict.fromkeys([*self.bytes_received, *self.bytes_sent])
            },
        }


def finite(log2: float) -> float | None:
    """JSON has no -inf: an impossible event is reported as null."""
    return None if log2 == float("-inf") else log2
