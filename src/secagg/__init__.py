"""secagg: secure aggregation (SecAgg / SecAgg+) for federated learning and analytics.

The server learns the sum of the clients' vectors and nothing about any single one, even when
clients drop out. See docs/PROTOCOL.md in the repository for the protocol (and the README's
threat model) and ``secagg.simulate`` to try it.
"""

from __future__ import annotations

from secagg.context import context_digest
from secagg.encoding import DPConfig, EncodingSpec
from secagg.protocol.config import RoundConfig
from secagg.simulation import SimulationResult, simulate
from secagg.transport.client import Client

__all__ = [
    "Client",
    "DPConfig",
    "EncodingSpec",
    "RoundConfig",
    "SimulationResult",
    "__version__",
    "context_digest",
    "simulate",
]

__version__ = "0.1.0"
