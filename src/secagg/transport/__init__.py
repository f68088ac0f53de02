"""The network layer: the ``secagg.v1`` protobuf schema over gRPC (grpc.aio).

:class:`AggregationServer` runs rounds for clients that connect over the network;
:class:`Client` takes part in one round from a process anywhere.
"""

from __future__ import annotations

from secagg.transport.client import ANNOUNCED, Client, Outcome, channel_credentials
from secagg.transport.server import AggregationServer, RoundReport, ServerOptions

__all__ = [
    "ANNOUNCED",
    "AggregationServer",
    "Client",
    "Outcome",
    "RoundReport",
    "ServerOptions",
    "channel_credentials",
]
