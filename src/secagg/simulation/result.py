"""What :func:`~secagg.simulation.engine.simulate` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.ring import ring_sum
from secagg.encoding import DecodedResult
from secagg.errors import ConfigError
from secagg.protocol.config import RoundConfig
from secagg.protocol.dropped import Dropped
from secagg.protocol.server.state import AggregationResult
from secagg.simulation.inputs import as_matrix

__all__ = ["PhaseTiming", "SimulationResult", "zero_based_outcome"]


@dataclass(slots=True)
class PhaseTiming:
    """Seconds spent in one round: all clients together, the slowest client, and the server."""

    clients_total: float = 0.0
    client_max: float = 0.0
    server: float = 0.0
    clients: int = 0

    @property
    def client_mean(self) -> float:
        """Mean seconds per participating client."""
        return self.clients_total / self.clients if self.clients else 0.0


@dataclass(slots=True)
class SimulationResult:
    """The outcome of :func:`simulate`.

    ``total`` is the sum mod 2^bits of the inputs of ``included`` (0-based client indices).
    ``dropped`` maps each excluded client to a :class:`~secagg.protocol.dropped.Dropped`
    (round, reason, detail), the shape every result uses. ``timings`` has one entry
    per protocol round that ran; byte counts are protocol payload bytes.
    """

    total: npt.NDArray[np.unsignedinteger]
    included: list[int]
    dropped: dict[int, Dropped]
    config: RoundConfig
    timings: dict[str, PhaseTiming]
    client_bytes_sent: list[int]
    client_bytes_received: list[int]
    server_bytes_sent: int
    server_bytes_received: int
    decoded: DecodedResult | None = None

    def _decoded(self) -> DecodedResult:
        if self.decoded is None:
            raise ConfigError("this round summed integers; pass clip= to simulate float inputs")
        return self.decoded

    @property
    def sum(self) -> Any:
        """sum(x) of the included inputs (same structure as one input); unweighted float mode."""
        return self._decoded().sum

    @property
    def mean(self) -> Any:
        """sum(x) / number of included clients; unweighted float mode."""
        return self._decoded().mean

    @property
    def weighted_sum(self) -> Any:
        """sum(w x) of the included inputs; needs ``weights=``."""
        return self._decoded().weighted_sum

    @property
    def total_weight(self) -> float:
        """sum(w) of the included clients; needs ``weights=``."""
        return self._decoded().total_weight

    @property
    def weighted_mean(self) -> Any:
        """sum(w x) / sum(w) over the included clients; needs ``weights=``."""
        return self._decoded().weighted_mean

    @property
    def bits(self) -> int:
        """The ring bit width."""
        return self.config.bits

    def plain_total(self, inputs: npt.ArrayLike) -> npt.NDArray[np.unsignedinteger]:
        """The plain sum mod 2^bits of the included inputs, computed directly (for checking)."""
        rows = as_matrix(inputs, self.config.bits)
        return ring_sum((rows[i] for i in self.included), self.config.bits, dim=self.config.dim)


def zero_based_outcome(
    result: AggregationResult,
) -> tuple[list[int], dict[int, Dropped]]:
    """The server's included and dropped clients as ``simulate`` reports them (0-based; a client
    dropped after its input was summed counts as included, not dropped)."""
    included = [i - 1 for i in result.included]
    kept = set(included)
    dropped = {
        i - 1: Dropped(r, reason, detail)
        for i, (r, reason, detail) in result.dropped.items()
        if i - 1 not in kept
    }
    return included, dropped
