"""The coordinator: one small gRPC method that tells a client which shard to join.

``/secagg.Coordinator/Assign`` takes a JSON object ``{"name": NAME}`` and answers
``{"shard": i, "address": "HOST:PORT"}`` (UTF-8 JSON bytes both ways, so it needs no change
to the round's protobuf schema). The client then runs an ordinary round against that address.
The assignment is :class:`~secagg.sharding.assign.ShardAssigner`'s: uniform at random from
the free slots, the same shard for a name asking twice. When every slot is taken the call
fails with RESOURCE_EXHAUSTED; a malformed request with INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

import grpc

from secagg.errors import ConfigError, TransportError
from secagg.sharding.assign import MAX_NAME_BYTES, ShardAssigner, ShardsFullError

__all__ = ["ASSIGN_METHOD", "Coordinator", "find_shard", "find_shard_sync"]

SERVICE = "secagg.Coordinator"
ASSIGN_METHOD = f"/{SERVICE}/Assign"
_MAX_REQUEST_BYTES = MAX_NAME_BYTES + 64
# Retried while ``wait`` lasts: no coordinator yet, or a call lost in a connection burst.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


class Coordinator:
    """Serves shard assignments for one sharded round."""

    def __init__(self, assigner: ShardAssigner, addresses: Sequence[str]) -> None:
        self._assigner = assigner
        self._addresses = list(addresses)
        self._server: grpc.aio.Server | None = None

    def answer(self, request: bytes) -> tuple[grpc.StatusCode, bytes]:
        """The reply to one Assign request (status OK with JSON, or an error and its text)."""
        if len(request) > _MAX_REQUEST_BYTES:
            return grpc.StatusCode.INVALID_ARGUMENT, b"request too large"
        try:
            body = json.loads(request)
            name = body["name"] if isinstance(body, dict) else None
            if not isinstance(name, str):
                raise ValueError
        except (ValueError, KeyError, UnicodeDecodeError):
            return grpc.StatusCode.INVALID_ARGUMENT, b'expected {"name": "<client name>"}'
        try:
            shard = self._assigner.assign(name)
        except ShardsFullError as exc:
            return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc).encode()
        except ConfigError as exc:
            return grpc.StatusCode.INVALID_ARGUMENT, str(exc).encode()
        reply = {"shard": shard, "address": self._addresses[shard]}
        return grpc.StatusCode.OK, json.dumps(reply).encode()

    async def _assign(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        status, body = self.answer(request)
        if status is not grpc.StatusCode.OK:
            await context.abort(status, body.decode())
        return body

    async def start(self, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
        """Listen on ``address`` (HOST:PORT, port 0 picks one); returns the port."""
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4096)])
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Assign": grpc.unary_unary_rpc_method_handler(self._assign)}
        )
        server.add_generic_rpc_handlers((handler,))
        port = int(
            server.add_insecure_port(address)
            if credentials is None
            else server.add_secure_port(address, credentials)
        )
        await server.start()
        self._server = server
        return port

    async def stop(self) -> None:
        """Stop serving (calls in flight get a second to finish)."""
        if self._server is not None:
            await self._server.stop(1.0)
            self._server = None


async def find_shard(
    coordinator: str,
    name: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = 30.0,
    wait: float = 0.0,
) -> tuple[int, str]:
    """Ask the coordinator at ``coordinator`` which shard client ``name`` joins: (index, address).

    ``credentials`` None means plaintext (loopback testing only). While the coordinator is not
    up yet (or a call is cancelled in a burst of connections) the call is retried with
    jittered backoff for up to ``wait`` seconds.
    """
    request = json.dumps({"name": name}).encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = 0.2
    while True:
        channel = (
            grpc.aio.insecure_channel(coordinator)
            if credentials is None
            else grpc.aio.secure_channel(coordinator, credentials)
        )
        try:
            async with channel:
                reply = await channel.unary_unary(ASSIGN_METHOD)(request, timeout=timeout)
            return _parse_reply(reply)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _TRANSIENT or loop.time() >= deadline:
                raise TransportError(
                    f"the coordinator at {coordinator} refused an assignment: "
                    f"{exc.code().name} {exc.details() or ''}".strip()
                ) from None
        await asyncio.sleep(min(pause * (0.5 + random.random()), max(0.0, deadline - loop.time())))  # noqa: S311 - jitter
        pause = min(pause * 2, 5.0)


def find_shard_sync(coordinator: str, name: str, **kwargs: object) -> tuple[int, str]:
    """:func:`find_shard` for synchronous callers (the CLI)."""
    return asyncio.run(find_shard(coordinator, name, **kwargs))  # type: ignore[arg-type]


def _parse_reply(reply: object) -> tuple[int, str]:
    try:
        body = json.loads(reply)  # type: ignore[arg-type]
        shard, address = body["shard"], body["address"]
    except (TypeError, ValueError, KeyError):
        raise TransportError("the coordinator's reply is not a shard assignment") from None
    if isinstance(shard, bool) or not isinstance(shard, int) or not isinstance(address, str):
        raise TransportError("the coordinator's reply is not a shard assignment")
    if ":" not in address or len(address) > 300:
        raise TransportError("the coordinator's reply names no HOST:PORT")
    return shard, address
