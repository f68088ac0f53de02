"""The gRPC service's names, shared by the client and the server (no grpc import needed).

One bidirectional stream per round: ``Participate`` on ``secagg.v1.Aggregation``
(``secagg.proto``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["METHOD", "RPC", "SERVICE"]

SERVICE: Final = "secagg.v1.Aggregation"
RPC: Final = "Participate"
METHOD: Final = f"/{SERVICE}/{RPC}"
