"""gRPC health checking (the standard ``grpc.health.v1.Health`` service) for orchestrators.

The server reports SERVING for ``""`` and ``secagg.v1.Aggregation`` while it accepts rounds and
NOT_SERVING once it finishes its last round or shuts down. The service comes from the optional
``grpcio-health-checking`` package (extra ``metrics``); without it the server runs unchanged and
answers health checks with UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["SERVICE", "add_health", "set_serving"]

SERVICE = "secagg.v1.Aggregation"
_pending: set[asyncio.Task[None]] = set()  # keep the status updates alive until they ran


def add_health(server: Any) -> Any:
    """Register the health service on a ``grpc.aio`` server; returns its servicer or None."""
    try:
        from grpc_health.v1 import health, health_pb2_grpc
    except ImportError:
        return None
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


def set_serving(servicer: Any, *, serving: bool) -> None:
    """Report SERVING or NOT_SERVING for the server and the aggregation service."""
    if servicer is None:
        return
    from grpc_health.v1 import health_pb2

    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )

    async def update() -> None:
        for service in ("", SERVICE):
            await servicer.set(service, status)

    task = asyncio.get_running_loop().create_task(update())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
