"""secagg: secure aggregation (SecAgg / SecAgg+) for federated learning and analytics.

The server learns the sum of the clients' vectors and nothing about any single one, even when
clients drop out. See docs/PROTOCOL.md in the repository for the protocol (and the README's
threat model) and ``secagg.simulate`` to try it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The exports load on first use (PEP 562), so ``import secagg`` and the sans-IO core stay cheap:
# neither pulls in grpc, asyncio or socket until ``secagg.Client`` (or the like) is touched.
if TYPE_CHECKING:
    from secagg.encoding import DPConfig, EncodingSpec
    from secagg.encoding.context import context_digest
    from secagg.encoding.task import Task, pack_arrays, unpack_arrays
    from secagg.protocol.config import RoundConfig
    from secagg.protocol.policy import ClientPolicy
    from secagg.service.server import RoundOutcome, Server
    from secagg.simulation.engine import SimulationResult, simulate
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

# Export name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Client": "secagg.transport.client",
    "ClientPolicy": "secagg.protocol.policy",
    "DPConfig": "secagg.encoding",
    "EncodingSpec": "secagg.encoding",
    "Outcome": "secagg.transport.client",
    "RoundConfig": "secagg.protocol.config",
    "RoundOutcome": "secagg.service",
    "Server": "secagg.service",
    "SimulationResult": "secagg.simulation",
    "Task": "secagg.encoding.task",
    "context_digest": "secagg.encoding.context",
    "pack_arrays": "secagg.encoding.task",
    "simulate": "secagg.simulation",
    "unpack_arrays": "secagg.encoding.task",
}


if not TYPE_CHECKING:  # mypy sees the imports above and still flags unknown attributes

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'secagg' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
