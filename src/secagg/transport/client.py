"""The client side over gRPC: ``await secagg.Client(server).submit(vector)``.

A :class:`Client` opens one ``Participate`` stream, says Hello with its name and vector length,
receives its index and the round's :class:`~secagg.protocol.config.RoundConfig`, and then runs
a :class:`~secagg.protocol.client.session.ClientSession` over the stream until the round
completes or aborts. It returns an :class:`Outcome`; it raises only for misuse (a vector that
is not integers mod 2^bits raises nothing either: the outcome then names the reason).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import grpc
import numpy as np
import numpy.typing as npt

from secagg.crypto.signing import SigningKey
from secagg.encoding import Encoder
from secagg.errors import ConfigError, EncodingError
from secagg.identity_registry import IdentityRegistryFile
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.config import PROTOCOL_VERSION, RoundConfig
from secagg.protocol.messages import (
    AdvertiseKeys,
    ClientMessage,
    ConsistencySignature,
    EncryptedShares,
    MaskedInput,
    Round,
    UnmaskResponse,
)
from secagg.reasons import AbortReason
from secagg.round_spec import RoundSpec, spec_digest
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import (
    DEFAULT_CHUNK_BYTES,
    FrameError,
    client_frame,
    masked_input_frames,
    parse_server_frame,
    server_message,
)
from secagg.transport.server import METHOD

__all__ = ["ANNOUNCED", "Client", "Outcome", "channel_credentials"]

# ``submit(tree, encoder=ANNOUNCED)``: encode with the spec the round announces in Welcome.
ANNOUNCED: Final = "announced"

_ROUND_OF: dict[type, Round] = {
    AdvertiseKeys: Round.ADVERTISE_KEYS,
    EncryptedShares: Round.SHARE_KEYS,
    MaskedInput: Round.MASKED_INPUT,
    ConsistencySignature: Round.CONSISTENCY_CHECK,
    UnmaskResponse: Round.UNMASKING,
}


@dataclass(frozen=True)
class Outcome:
    """How a client's round ended: ``included`` in the sum, or not and why."""

    included: bool
    name: str
    reason: str | None = None
    detail: str = ""
    index: int | None = None
    round_id: str | None = None
    num_clients: int = 0
    num_included: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "included": self.included,
            "name": self.name,
            "reason": self.reason,
            "detail": self.detail,
            "index": self.index,
            "round_id": self.round_id,
            "num_clients": self.num_clients,
            "num_included": self.num_included,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "seconds": self.seconds,
        }


def channel_credentials(
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials verifying the server against ``root_certificates`` (system roots if None)."""
    return grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)


class _Failed(Exception):  # noqa: N818 - internal control flow
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Client:
    """A secure-aggregation client of the server at ``server`` ("host:port").

    TLS is the default: pass ``root_certificates`` (PEM bytes) to trust a private CA, or none
    to use the system roots; ``insecure=True`` uses plaintext (loopback testing only).
    ``timeout`` bounds each wait for the server, in seconds. ``progress`` gets plain status
    lines (never secrets). ``stall_at`` is a testing hook: the client stops answering (but
    keeps its connection open) when it would send its message for that round.
    """

    def __init__(
        self,
        server: str,
        *,
        name: str | None = None,
        insecure: bool = False,
        root_certificates: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        tls_server_name: str | None = None,
        timeout: float = 600.0,
        progress: Callable[[str], None] | None = None,
        stall_at: Round | None = None,
        identity: SigningKey | None = None,
        registry: IdentityRegistryFile | None = None,
    ) -> None:
        if not server or ":" not in server:
            raise ConfigError(f"server must be HOST:PORT, got {server!r}")
        self.server = server
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._insecure = insecure
        self._credentials = credentials
        if credentials is None and not insecure:
            self._credentials = channel_credentials(root_certificates)
        self._tls_server_name = tls_server_name
        self._timeout = timeout
        self._progress = progress or (lambda _line: None)
        self._stall_at = stall_at
        self._identity = identity
        self._registry = registry
        self._sent = 0
        self._received = 0

    def submit_sync(
        self,
        vector: Any,
        *,
        encoder: Encoder | Literal["announced"] | None = None,
        weight: float | None = None,
        spec: RoundSpec | bytes | None = None,
    ) -> Outcome:
        """:meth:`submit` for code without an event loop."""
        return asyncio.run(self.submit(vector, encoder=encoder, weight=weight, spec=spec))

    async def submit(
        self,
        vector: Any,
        *,
        encoder: Encoder | Literal["announced"] | None = None,
        weight: float | None = None,
        spec: RoundSpec | bytes | None = None,
    ) -> Outcome:
        """Join a round with ``vector`` (D integers mod 2^bits) and run it to the end.

        ``spec`` (any kind, e.g. an analytics query's; ``b""`` for raw integers) is what this
        client's integers mean: the round must announce exactly it, or the client leaves with
        ``spec-mismatch`` before sending anything. Without it (and without an encoder) the
        client takes the round's spec as given.

        With ``encoder`` (a :class:`secagg.encoding.Encoder`), ``vector`` is a float array or
        pytree (and ``weight`` its weight in a weighted mean): it is clipped, quantized and
        encoded here. The round must announce exactly the encoder's spec (``Welcome.spec``,
        bound into the session id); otherwise the client leaves with ``spec-mismatch``.
        ``encoder=ANNOUNCED`` ("announced") instead encodes with whatever encoding spec the
        round announces (the server's D must then be fixed, by ``--dim`` or its spec). The
        server decodes the sum with the same spec:
        ``encoder.decode(sum, n_included, spec_digest=report.spec_digest)``.
        """
        tree = None
        expected = spec.encode() if isinstance(spec, RoundSpec) else spec
        if spec is not None and encoder is not None:
            raise ConfigError("pass spec or encoder, not both (an encoder has its own spec)")
        if expected is not None:
            spec_digest(expected)  # a TypeError-free check that it is bytes
            if expected:
                RoundSpec.decode(expected)  # refuse a non-canonical spec here, not mid-round
        if isinstance(encoder, Encoder):
            expected = encoder.round_spec.encode()
        if encoder == ANNOUNCED:
            tree, data = vector, np.zeros(0, dtype=np.uint64)  # encoded once the spec is known
        else:
            if isinstance(encoder, Encoder):
                vector = encoder.encode(vector, weight=weight)
            elif encoder is not None:
                raise ConfigError(f"encoder must be an Encoder, 'announced' or None: {encoder!r}")
            elif weight is not None:
                raise ConfigError("weight needs an encoder (integer vectors carry no weight)")
            data = np.asarray(vector)
            if data.ndim != 1 or data.shape[0] < 1:
                raise ConfigError(f"vector must be 1-D and non-empty, got shape {data.shape}")
        started = time.perf_counter()
        self._sent = self._received = 0
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
            channel = grpc.aio.insecure_channel(self.server, options=options)
        else:
            channel = grpc.aio.secure_channel(self.server, self._credentials, options=options)
        fields: dict[str, Any] = {}
        try:
            async with channel:
                call = channel.stream_stream(METHOD)()
                try:
                    bits = encoder.bits if isinstance(encoder, Encoder) else None
                    fields = await self._run(call, data, expected, bits, tree, weight)
                    return Outcome(
                        True, self.name, seconds=time.perf_counter() - started, **self._io(fields)
                    )
                except _Failed as exc:
                    return Outcome(
                        False,
                        self.name,
                        exc.reason,
                        exc.detail,
                        seconds=time.perf_counter() - started,
                        **self._io(fields),
                    )
                finally:
                    call.cancel()
        except grpc.aio.AioRpcError as exc:
            return Outcome(
                False,
                self.name,
                "transport-error",
                f"{exc.code().name}: {exc.details()}",
                seconds=time.perf_counter() - started,
                **self._io(fields),
            )

    def _io(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "bytes_sent": self._sent, "bytes_received": self._received}

    async def _write(self, call: Any, frame: pb.ClientFrame) -> None:
        data = frame.SerializeToString()
        self._sent += len(data)
        await call.write(data)

    async def _read(self, call: Any, timeout: float) -> pb.ServerFrame:
        try:
            data = await asyncio.wait_for(call.read(), timeout)
        except TimeoutError:
            raise _Failed("no-response", f"no message from the server in {timeout:.0f}s") from None
        except grpc.aio.AioRpcError as exc:
            raise _Failed("transport-error", f"{exc.code().name}: {exc.details()}") from None
        if data is grpc.aio.EOF:
            raise _Failed("transport-error", "the server closed the stream")
        self._received += len(data)
        try:
            return parse_server_frame(data)
        except FrameError as exc:
            raise _Failed(exc.reason.value, exc.detail) from None

    async def _send_message(self, call: Any, msg: ClientMessage, chunk_bytes: int) -> None:
        round_ = _ROUND_OF.get(type(msg))
        if round_ is not None and self._stall_at is not None and round_ >= self._stall_at:
            self._progress(f"stalling before {round_.label}")
            while True:  # send nothing more, but hear the server out
                heard = await self._read(call, self._timeout)
                if heard.WhichOneof("body") == "abort":
                    raise _Failed(heard.abort.reason, heard.abort.detail)
        if isinstance(msg, MaskedInput):
            for frame in masked_input_frames(msg, chunk_bytes):
                await self._write(call, frame)
        else:
            await self._write(call, client_frame(msg))
        if round_ is not None:
            self._progress(f"sent {round_.label}")

    def _malicious(self, welcome: pb.Welcome, config: RoundConfig) -> dict[str, Any]:
        """Identity and registry for malicious mode: this client's own trusted registry, with
        the indices the server assigned to the names (never keys coming from the server)."""
        if config.mode != "malicious":
            return {}
        if self._identity is None or self._registry is None:
            raise _Failed("unknown-identity", "malicious mode needs --identity and --registry")
        roster = {str(name): int(index) for index, name in welcome.roster.items()}
        if roster.get(self.name) != welcome.index or len(roster) != len(welcome.roster):
            raise _Failed("inconsistent-sets", "the server's roster does not list this client")
        try:
            registry = self._registry.with_indices(roster)
        except ConfigError as exc:
            raise _Failed("unknown-identity", f"roster contradicts the registry: {exc}") from None
        return {"identity": self._identity, "registry": registry}

    async def _take_announced(
        self, call: Any, config: RoundConfig, welcome: pb.Welcome, tree: Any, weight: float | None
    ) -> tuple[Encoder, npt.NDArray[Any]]:
        """Build the encoder the round announced and encode ``tree`` with it, or leave."""
        announced = bytes(welcome.spec)
        if spec_digest(announced) != config.spec_digest:
            raise _Failed("malformed-message", "Welcome.spec does not match the config's digest")
        reason = AbortReason.SPEC_MISMATCH.value
        if not announced:
            await self._refuse(
                call, config, welcome.index, reason,
                "the round announces raw integers (no spec); this client encodes floats",
            )  # fmt: skip
        try:
            encoder = Encoder.from_round_spec(announced, tree)
        except (ConfigError, EncodingError) as exc:
            await self._refuse(call, config, welcome.index, reason, f"announced spec: {exc}")
        try:
            return encoder, encoder.encode(tree, weight=weight)
        except EncodingError as exc:
            await self._refuse(call, config, welcome.index, "invalid-input", str(exc))
        raise AssertionError("unreachable")  # _refuse always raises

    async def _refuse(
        self, call: Any, config: RoundConfig, index: int, reason: str, detail: str
    ) -> None:
        """Tell the server this client leaves the round (before round 0), then fail."""
        await self._write(
            call,
            pb.ClientFrame(
                abort=pb.Abort(
                    session_id=config.session_id, sender=index, reason=reason, detail=detail[:200]
                )
            ),
        )
        raise _Failed(reason, detail)

    async def _run(
        self,
        call: Any,
        data: npt.NDArray[Any],
        expected: bytes | None,
        bits: int | None,
        tree: Any = None,
        weight: float | None = None,
    ) -> dict[str, Any]:
        # dim 0: "the round's D" (only when encoding with the announced spec, below).
        hello = pb.ClientFrame(
            hello=pb.Hello(protocol_version=PROTOCOL_VERSION, name=self.name, dim=data.shape[0])
        )
        await self._write(call, hello)
        self._progress(f"waiting to join at {self.server} as {self.name!r}")
        frame = await self._read(call, self._timeout)
        kind = frame.WhichOneof("body")
        if kind == "reject":
            raise _Failed(frame.reject.reason or "rejected", frame.reject.detail)
        if kind != "welcome":
            raise _Failed("malformed-message", f"expected Welcome, got {kind}")
        welcome = frame.welcome
        try:
            config = RoundConfig.decode(welcome.config, allow_unsafe=True)
        except ConfigError as exc:
            raise _Failed("malformed-message", f"bad round config: {exc}") from None
        fields: dict[str, Any] = {
            "index": welcome.index,
            "round_id": config.round_id.hex(),
            "num_clients": config.num_clients,
        }
        if tree is not None:
            encoder, data = await self._take_announced(call, config, welcome, tree, weight)
            expected, bits = encoder.round_spec.encode(), encoder.bits
        if config.dim != data.shape[0]:
            raise _Failed("wrong-length", f"the round sums D={config.dim}")
        if bits is not None and config.bits != bits:
            raise _Failed(
                "config-mismatch",
                f"the round uses b={config.bits}; this client's encoding needs b={bits}",
            )
        announced = bytes(welcome.spec)
        if spec_digest(announced) != config.spec_digest:
            raise _Failed("malformed-message", "Welcome.spec does not match the config's digest")
        if expected is not None and announced != expected:
            await self._refuse(
                call, config, welcome.index, AbortReason.SPEC_MISMATCH.value,
                _spec_difference(announced, expected),
            )  # fmt: skip
        chunk_bytes = int(welcome.chunk_words or 0) * (4 if config.bits <= 32 else 8)
        if chunk_bytes <= 0 or (
            welcome.max_message_bytes and chunk_bytes > welcome.max_message_bytes - 1024
        ):
            chunk_bytes = min(DEFAULT_CHUNK_BYTES, max(4096, int(welcome.max_message_bytes) // 2))
        self._progress(
            f"joined as client {welcome.index} of {config.num_clients} "
            f"(D={config.dim}, b={config.bits}, k={config.degree}, t={config.threshold})"
        )
        try:
            session = ClientSession(
                config,
                welcome.index,
                data,
                expected_spec_digest=None if expected is None else spec_digest(expected),
                **self._malicious(welcome, config),
            )
        except ConfigError as exc:
            await self._refuse(call, config, welcome.index, "invalid-input", str(exc))
        first = session.start()
        await self._send_message(call, first, chunk_bytes)
        wait = self._timeout
        while session.state not in (ClientState.DONE, ClientState.ABORTED):
            frame = await self._read(call, wait)
            try:
                msg = server_message(frame)
            except FrameError as exc:
                raise _Failed(exc.reason.value, exc.detail) from None
            reply = await asyncio.to_thread(session.receive, msg)
            if reply is not None:
                await self._send_message(call, reply, chunk_bytes)
        if session.state is ClientState.ABORTED:
            raise _Failed(str(session.abort_reason), session.abort_detail)
        included = session.included or ()
        fields["num_included"] = len(included)
        if welcome.index not in included:
            raise _Failed("not-included", "the round completed without this client's input")
        self._progress(f"included in the sum with {len(included)} clients")
        await call.done_writing()
        return fields


def _spec_difference(announced: bytes, expected: bytes) -> str:
    """Why this client's vector does not fit the announced spec (specs hold no secrets)."""
    if not announced:
        return "the round announces raw integers (no spec); this client's vector has a spec"
    if not expected:
        return "the round announces a spec; this client sends raw integers (spec=b'')"
    try:
        theirs = RoundSpec.decode(announced)
    except ConfigError as exc:
        return f"the round's announced spec is malformed: {exc}"
    mine = RoundSpec.decode(expected)
    return "the round's spec differs from this client's (round vs client): " + "; ".join(
        theirs.diff(mine)
    )
