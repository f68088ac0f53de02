"""secagg: secure aggregation (SecAgg / SecAgg+) for federated learning and analytics.

The server learns the sum of the clients' vectors and nothing about any single one, even when
clients drop out. See docs/PROTOCOL.md in the repository for the protocol (and the README's
threat model) and ``secagg.simulate`` to try it.
"""

from __future__ import annotations

from secagg.context import context_digest
from secagg.encoding import DPConfig, EncodingSpec
from secagg.protocol.config import RoundConfig
from secagg.protocol.policy import ClientPolicy
from secagg.service import RoundOutcome, Server
from secagg.simulation import SimulationResult, simulate
from secagg.task import Task, pack_arrays, unpack_arrays
from secagg.transport.client import Client, Outcome

__all__ = [
    "Client",
    "ClientPolicy",
    "DPConfig",
    "EncodingSpec",
    "Outcome",
    "RoundConfig",
    "RoundOutcome",
    "Server",
    "SimulationResult",
    "Task",
    "__version__",
    "context_digest",
    "pack_arrays",
    "simulate",
    "unpack_arrays",
]

__version__ = "0.1.0"
