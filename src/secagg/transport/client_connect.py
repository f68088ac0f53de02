"""A client's connection attempts: one channel and stream per attempt, retried with jittered
exponential backoff while no server answers (within ``wait``) or a connect fails for a reason
that may pass (within ``timeout``)."""

from __future__ import annotations

import time
from typing import Any

import grpc
import numpy.typing as npt

from secagg.reasons import DropReason
from secagg.transport.client_outcome import ConnectFailed, Failed, NotReached, Outcome, jitter
from secagg.transport.client_round import ClientRoundMixin, MakeInput
from secagg.transport.service import METHOD

__all__ = ["BACKOFF_FIRST", "BACKOFF_MAX", "ClientConnectMixin"]

BACKOFF_FIRST = 0.25  # seconds before the first retry
BACKOFF_MAX = 5.0


class ClientConnectMixin(ClientRoundMixin):
    """The connecting half of :class:`~secagg.transport.client.Client`."""

    _wait: float
    _credentials: grpc.ChannelCredentials | None
    _tls_server_name: str | None

    async def _submit_attempts(
        self,
        data: npt.NDArray[Any],
        bits: int | None,
        expected: bytes | None,
        tree: Any,
        weight: float | None,
        make: MakeInput | None = None,
    ) -> Outcome:
        """Join one round, retrying with jittered exponential backoff within ``wait`` while no
        server answers, and within ``timeout`` while connects fail before the server's first
        frame for a reason that may pass (:class:`ConnectFailed`)."""
        started = time.perf_counter()
        self._sent = self._received = 0
        start = self._clock.now()
        delay = BACKOFF_FIRST
        while True:
            try:
                return await self._attempt(data, bits, started, expected, tree, weight, make)
            except NotReached as exc:
                budget = self._timeout if isinstance(exc, ConnectFailed) else self._wait
                remaining = start + budget - self._clock.now()
                if remaining <= 0:
                    return self._failed(exc.reason, exc.detail, started)
                pause = min(remaining, delay * jitter())
                if isinstance(exc, ConnectFailed):
                    self._progress(
                        f"connecting to {self.server} failed ({exc.detail}); "
                        f"retrying in {pause:.1f}s"
                    )
                else:
                    self._progress(f"no server at {self.server} yet; retrying in {pause:.1f}s")
                await self._clock.sleep(pause)
                delay = min(BACKOFF_MAX, 2 * delay)

    def _channel(self) -> grpc.aio.Channel:
        options: list[tuple[str, str | int]] = [
            ("grpc.max_receive_message_length", 256 * 1024 * 1024),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
            # Its own connection per client, even with many clients in one process: streams
            # multiplexed on one shared connection stall beyond its concurrent-stream limit.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if self._tls_server_name:
            options.append(("grpc.ssl_target_name_override", self._tls_server_name))
        if self._credentials is None:
            return grpc.aio.insecure_channel(self.server, options=options)
        return grpc.aio.secure_channel(self.server, self._credentials, options=options)

    async def _attempt(
        self,
        data: npt.NDArray[Any],
        bits: int | None,
        started: float,
        expected: bytes | None,
        tree: Any,
        weight: float | None,
        make: MakeInput | None = None,
    ) -> Outcome:
        """One connection; raises :class:`NotReached` when nothing answered."""
        fields: dict[str, Any] = {}
        try:
            async with self._channel() as channel:
                call = channel.stream_stream(METHOD)()
                try:
                    await self._run(call, data, expected, bits, fields, tree, weight, make)
                    return Outcome(
                        True, self.name, seconds=time.perf_counter() - started, **self._io(fields)
                    )
                except NotReached:
                    raise
                except Failed as exc:
                    return self._failed(exc.reason, exc.detail, started, fields)
                finally:
                    call.cancel()
        except grpc.aio.AioRpcError as exc:
            return self._failed(
                DropReason.TRANSPORT.value,
                f"{exc.code().name}: {exc.details()}",
                started,
                fields,
            )

    def _failed(
        self, reason: str, detail: str, started: float, fields: dict[str, Any] | None = None
    ) -> Outcome:
        """A failed outcome; with ``fields``, also the traffic of the connection it made."""
        io = {} if fields is None else self._io(fields)
        return Outcome(
            False, self.name, reason, detail, seconds=time.perf_counter() - started, **io
        )

    def _io(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "bytes_sent": self._sent, "bytes_received": self._received}
