"""The client side over gRPC: ``await secagg.Client(server).submit(vector)``.

A :class:`Client` opens one ``Participate`` stream, says Hello with its name and vector length,
receives its index and the round's :class:`~secagg.protocol.config.RoundConfig`, and then runs
a :class:`~secagg.protocol.client.session.ClientSession` over the stream until the round
completes or aborts. It returns an :class:`Outcome`; it raises only for misuse (a vector that
is not integers mod 2^bits raises nothing either: the outcome then names the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

import grpc
import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import default_random
from secagg.crypto.signing import SigningKey
from secagg.encoding import Encoder
from secagg.encoding.context import CONTEXT_DIGEST_BYTES
from secagg.encoding.round_spec import RoundSpec, spec_digest
from secagg.encoding.task import Task
from secagg.errors import ConfigError, EncodingError, UnsafeParametersError
from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.config import PROTOCOL_VERSION, RoundConfig
from secagg.protocol.messages import (
    AdvertiseKeys,
    ClientMessage,
    ConsistencySignature,
    EncryptedShares,
    MaskedInput,
    RevealNonce,
    Round,
    UnmaskResponse,
)
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason, DropReason, RejectReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import (
    DEFAULT_CHUNK_BYTES,
    FrameError,
    client_frame,
    masked_input_frames,
    parse_server_frame,
    server_message,
)
from secagg.transport.hello import CHALLENGE_BYTES, hello_frame
from secagg.transport.service import METHOD
from secagg.transport.taskwire import TaskAssembler

__all__ = [
    "ANNOUNCED",
    "Client",
    "Outcome",
    "TaskFunction",
    "channel_credentials",
    "local_input_problem",
]

# ``submit(tree, encoder=ANNOUNCED)``: encode with the spec the round announces in Welcome.
ANNOUNCED: Final = "announced"

_ABORT_GRACE = 5.0  # seconds to let the server read a client's Abort before hanging up

_ROUND_OF: dict[type, Round] = {
    AdvertiseKeys: Round.ADVERTISE_KEYS,
    RevealNonce: Round.ADVERTISE_KEYS,
    EncryptedShares: Round.SHARE_KEYS,
    MaskedInput: Round.MASKED_INPUT,
    ConsistencySignature: Round.CONSISTENCY_CHECK,
    UnmaskResponse: Round.UNMASKING,
}


# Sessions this process took part in, per client name: a client never joins one session id
# twice. Bounded (oldest forgotten first); the protocol's own binding of every signature to
# the session's fresh nonces and keys is what makes a replay useless, this is a second check.
SESSION_MEMORY = 4096
_joined: OrderedDict[tuple[str, bytes], None] = OrderedDict()
_joined_lock = threading.Lock()


def _first_time(name: str, session_id: bytes) -> bool:
    """Record that ``name`` joins ``session_id``; False if it already did in this process."""
    key = (name, session_id)
    with _joined_lock:
        if key in _joined:
            return False
        _joined[key] = None
        while len(_joined) > SESSION_MEMORY:
            _joined.popitem(last=False)
        return True


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
    round: int = 0  # the server's round number (0: never welcomed)
    task_digest: str | None = None  # hex digest of the task received for the round, if any

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
            "round": self.round,
            "task_digest": self.task_digest,
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


class _NotReached(_Failed):
    """No server frame arrived because nothing answered at the address (worth a retry)."""


# What a round's input comes from once its task arrived: a coroutine making the vector and its
# bit width (participate), or None when the vector is given up front (submit).
_Make = Callable[[Task | None], Awaitable[tuple[npt.NDArray[Any], int | None]]]
# What a task function may return: a vector or pytree, or (pytree, weight) with an encoder.
TaskFunction = Callable[[Task | None], Any]
# participate: reasons to try the same round again, and reasons to stop the loop.
_RETRY_REASONS = frozenset({RejectReason.DUPLICATE_NAME.value, RejectReason.SERVER_FULL.value})
_FINAL_REASONS = frozenset(
    {RejectReason.NO_ROUND.value, AbortReason.SERVER_UNREACHABLE.value,
     AbortReason.SERVER_SHUTDOWN.value}
)  # fmt: skip
_MAX_RETRIES = 20

_BACKOFF_FIRST = 0.25  # seconds before the first retry under ``wait``
_BACKOFF_MAX = 5.0


class Client:
    """A secure-aggregation client of the server at ``server`` ("host:port").

    TLS is the default: pass ``root_certificates`` (PEM bytes) to trust a private CA, or none
    to use the system roots; ``insecure=True`` uses plaintext (loopback testing only).
    ``timeout`` bounds each wait for the server, in seconds. ``wait`` is how long to keep
    retrying, with jittered exponential backoff, while no server answers (0: fail at once).
    ``progress`` gets plain status lines (never secrets).

    Checks made here, whatever the server says: with ``identity`` and ``registry`` the client
    signs its Hello over the server's challenge and refuses a semi-honest round
    (``mode-mismatch``); with ``expected_context_digest`` (see :func:`secagg.context_digest`)
    it aborts with ``context-mismatch`` unless the round's context digest is that one; with
    ``bits``/``dim`` it checks its vector before connecting and refuses a round with another
    bit width or length. ``stall_at`` is a testing hook: the client stops answering (but keeps
    its connection open) when it would send its message for that round. A client
    refuses (``repeated-session``) a round whose session id a client of the same name already
    joined in this process (the last :data:`SESSION_MEMORY` sessions are remembered).
    ``policy`` is this client's own floor on the announced n, k and t (default
    :class:`ClientPolicy()`); a round below it ends with reason ``unsafe-parameters``, after
    an Abort to the server and before any key is advertised.
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
        wait: float = 0.0,
        progress: Callable[[str], None] | None = None,
        stall_at: Round | None = None,
        identity: SigningKey | None = None,
        registry: IdentityRegistryFile | None = None,
        expected_context_digest: bytes | None = None,
        bits: int | None = None,
        dim: int | None = None,
        policy: ClientPolicy | None = None,
        max_task_bytes: int = 1 << 30,
    ) -> None:
        if not server or ":" not in server:
            raise ConfigError(f"server must be HOST:PORT, got {server!r}")
        if wait < 0 or timeout <= 0:
            raise ConfigError(f"wait must be >= 0 and timeout > 0, got {wait} and {timeout}")
        if expected_context_digest is not None and (
            not isinstance(expected_context_digest, bytes)
            or len(expected_context_digest) != CONTEXT_DIGEST_BYTES
        ):
            raise ConfigError(
                f"expected_context_digest must be {CONTEXT_DIGEST_BYTES} bytes "
                "(from secagg.context_digest)"
            )
        if bits is not None and not 1 <= bits <= 64:
            raise ConfigError(f"bits must be in 1..64, got {bits}")
        if dim is not None and dim < 1:
            raise ConfigError(f"dim must be at least 1, got {dim}")
        if (identity is None) != (registry is None):
            raise ConfigError("identity and registry go together (malicious mode needs both)")
        self.server = server
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._insecure = insecure
        self._credentials = credentials
        if credentials is None and not insecure:
            self._credentials = channel_credentials(root_certificates)
        self._tls_server_name = tls_server_name
        self._timeout = timeout
        self._wait = wait
        self._progress = progress or (lambda _line: None)
        self._stall_at = stall_at
        self._identity = identity
        self._registry = registry
        self._expected_context = expected_context_digest
        self._bits = bits
        self._dim = dim
        self._policy = ClientPolicy() if policy is None else policy
        self._sent = 0
        self._received = 0
        self._max_task_bytes = max_task_bytes

    def participate_sync(
        self,
        fn: TaskFunction,
        *,
        rounds: int,
        encoder: Encoder | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """:meth:`participate` for code without an event loop."""
        return asyncio.run(
            self.participate(fn, rounds=rounds, encoder=encoder, on_outcome=on_outcome)
        )

    async def participate(
        self,
        fn: TaskFunction,
        *,
        rounds: int,
        encoder: Encoder | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Join ``rounds`` rounds one after another; returns each round's :class:`Outcome`.

        In each round the client receives the round's task (a :class:`~secagg.Task`, or
        None when the server hands out none), checks it against the round's context digest
        (``context-mismatch`` otherwise), and calls ``fn(task)``, which returns the input: an
        integer vector, or with ``encoder`` a float pytree or ``(pytree, weight)`` (the round
        must announce the encoder's spec). ``fn`` may be a coroutine function; a plain one runs
        in a worker thread (training may take long: the server's phase timeout, and in
        semi-honest mode its keys timeout, must cover it). ``on_outcome`` gets each outcome as
        its round ends. The loop stops early when the server says it runs no more rounds
        (``no-round``), shuts down or cannot be reached. A name still held by this client's
        previous stream (``duplicate-name``) or a full server (``server-full``) is retried
        with backoff.
        """
        if rounds < 1:
            raise ConfigError(f"rounds must be at least 1, got {rounds}")
        dim = encoder.dim if encoder is not None else self._dim
        if dim is None:
            raise ConfigError("participate needs dim= (the round's D) or an encoder")
        if encoder is not None and self._dim is not None and encoder.dim != self._dim:
            raise ConfigError(f"the encoder has D={encoder.dim}, this client dim={self._dim}")
        if encoder is not None and self._bits is not None and encoder.bits != self._bits:
            raise ConfigError(f"the encoder uses b={encoder.bits}, this client b={self._bits}")

        async def make(task: Task | None) -> tuple[npt.NDArray[Any], int | None]:
            try:
                if asyncio.iscoroutinefunction(fn):
                    produced = await fn(task)
                else:
                    produced = await asyncio.to_thread(fn, task)
                return _as_input(produced, encoder, self._bits)
            except (ConfigError, EncodingError, ValueError, TypeError) as exc:
                raise _Failed(AbortReason.INVALID_INPUT.value, str(exc)[:200]) from None

        expected = None if encoder is None else encoder.round_spec.encode()
        bits = encoder.bits if encoder is not None else self._bits
        shape = np.zeros(dim, dtype=np.uint64)  # D for the Hello; the input comes from make
        outcomes: list[Outcome] = []
        for _ in range(rounds):
            outcome = await self._submit_attempts(shape, bits, expected, None, None, make)
            delay = _BACKOFF_FIRST
            retries = 0
            while outcome.reason in _RETRY_REASONS and retries < _MAX_RETRIES:
                retries += 1
                await asyncio.sleep(delay * _jitter())
                delay = min(_BACKOFF_MAX, 2 * delay)
                outcome = await self._submit_attempts(shape, bits, expected, None, None, make)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if outcome.reason in _FINAL_REASONS:
                break
        return outcomes

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

        A vector this client can tell is unfit (negative values; with ``bits``/``dim``, values
        of 2^bits or more or another length) ends in an outcome naming the problem before
        anything connects.
        """
        tree = None
        bits = self._bits
        expected = spec.encode() if isinstance(spec, RoundSpec) else spec
        if spec is not None and encoder is not None:
            raise ConfigError("pass spec or encoder, not both (an encoder has its own spec)")
        if expected is not None:
            spec_digest(expected)  # a TypeError-free check that it is bytes
            if expected:
                RoundSpec.decode(expected)  # refuse a non-canonical spec here, not mid-round
        if encoder == ANNOUNCED:
            tree, data = vector, np.zeros(0, dtype=np.uint64)  # encoded once the spec is known
        else:
            if isinstance(encoder, Encoder):
                if bits is not None and encoder.bits != bits:
                    raise ConfigError(f"the encoder uses b={encoder.bits}, this client b={bits}")
                expected = encoder.round_spec.encode()
                vector = encoder.encode(vector, weight=weight)
                bits = encoder.bits
            elif encoder is not None:
                raise ConfigError(f"encoder must be an Encoder, 'announced' or None: {encoder!r}")
            elif weight is not None:
                raise ConfigError("weight needs an encoder (integer vectors carry no weight)")
            data = np.asarray(vector)
            if data.ndim != 1 or data.shape[0] < 1:
                raise ConfigError(f"vector must be 1-D and non-empty, got shape {data.shape}")
        problem = None if tree is not None else local_input_problem(data, bits, self._dim)
        if problem is not None:
            return Outcome(False, self.name, problem[0], problem[1])
        return await self._submit_attempts(data, bits, expected, tree, weight)

    async def _submit_attempts(
        self,
        data: npt.NDArray[Any],
        bits: int | None,
        expected: bytes | None,
        tree: Any,
        weight: float | None,
        make: _Make | None = None,
    ) -> Outcome:
        """Join one round, retrying within ``wait`` while no server answers."""
        started = time.perf_counter()
        self._sent = self._received = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = _BACKOFF_FIRST
        while True:
            try:
                return await self._attempt(data, bits, started, expected, tree, weight, make)
            except _NotReached as exc:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return Outcome(
                        False,
                        self.name,
                        exc.reason,
                        exc.detail,
                        seconds=time.perf_counter() - started,
                    )
                pause = min(remaining, delay * _jitter())
                self._progress(f"no server at {self.server} yet; retrying in {pause:.1f}s")
                await asyncio.sleep(pause)
                delay = min(_BACKOFF_MAX, 2 * delay)

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
        make: _Make | None = None,
    ) -> Outcome:
        """One connection; raises :class:`_NotReached` when nothing answered."""
        fields: dict[str, Any] = {}
        try:
            async with self._channel() as channel:
                call = channel.stream_stream(METHOD)()
                try:
                    await self._run(call, data, expected, bits, fields, tree, weight, make)
                    return Outcome(
                        True, self.name, seconds=time.perf_counter() - started, **self._io(fields)
                    )
                except _NotReached:
                    raise
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
                DropReason.TRANSPORT.value,
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

    async def _read(self, call: Any, timeout: float, *, first: bool = False) -> pb.ServerFrame:
        try:
            data = await asyncio.wait_for(call.read(), timeout)
        except TimeoutError:
            raise _Failed("no-response", f"no message from the server in {timeout:.0f}s") from None
        except grpc.aio.AioRpcError as exc:
            if first:
                raise self._connect_failure(exc) from None
            raise _Failed("transport-error", f"{exc.code().name}: {exc.details()}") from None
        if data is grpc.aio.EOF:
            raise _Failed("transport-error", "the server closed the stream")
        self._received += len(data)
        try:
            return parse_server_frame(data)
        except FrameError as exc:
            raise _Failed(exc.reason.value, exc.detail) from None

    def _connect_failure(self, exc: grpc.aio.AioRpcError) -> _Failed:
        """Say in words why the first read failed: nothing listening, or TLS on one side only."""
        details = exc.details() or ""
        raw = f"{exc.code().name}: {details}"
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            return _Failed(DropReason.TRANSPORT.value, raw)
        if "Connection refused" in details or "Failed to connect to remote host" in details:
            return _NotReached(
                AbortReason.SERVER_UNREACHABLE.value,
                f"no server is listening at {self.server} (connection refused)",
            )
        if self._insecure and ("Socket closed" in details or "Connection reset" in details):
            return _Failed(
                AbortReason.TLS_MISMATCH.value,
                f"the server at {self.server} closed a plaintext connection: it probably "
                "speaks TLS (drop --insecure and give --ca-cert)",
            )
        if not self._insecure and "WRONG_VERSION_NUMBER" in details:
            return _Failed(
                AbortReason.TLS_MISMATCH.value,
                f"the server at {self.server} does not speak TLS (a plaintext server needs "
                "--insecure, for loopback testing only)",
            )
        if "CERTIFICATE_VERIFY_FAILED" in details:
            return _Failed(
                DropReason.TRANSPORT.value,
                "TLS: the server's certificate does not verify against the trusted CA "
                "(CERTIFICATE_VERIFY_FAILED)",
            )
        return _Failed(DropReason.TRANSPORT.value, raw)

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

    async def _abort(self, call: Any, config: RoundConfig, index: int, failure: _Failed) -> None:
        """Tell the server this client leaves the round (before it sent anything of it)."""
        await self._write(
            call,
            pb.ClientFrame(
                abort=pb.Abort(
                    session_id=config.session_id,
                    sender=index,
                    reason=failure.reason,
                    detail=failure.detail[:200],
                )
            ),
        )
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.done_writing()

    def _malicious(self, welcome: pb.Welcome, config: RoundConfig) -> dict[str, Any]:
        """Identity and registry for malicious mode: this client's own trusted registry, with
        the indices the server assigned to the names (never keys coming from the server)."""
        if config.mode != "malicious":
            if self._identity is not None:
                # The server could switch signatures and the consistency round off this way.
                raise _Failed(
                    AbortReason.MODE_MISMATCH.value,
                    f"this client holds an identity but the server announced a {config.mode} "
                    "round: refusing to run without malicious-mode checks",
                )
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

    async def _refuse_unsafe(self, call: Any, welcome: pb.Welcome, detail: str) -> NoReturn:
        """Tell the server this client will not take part in a round it judges unsafe."""
        reason = AbortReason.UNSAFE_PARAMETERS.value
        abort = pb.Abort(
            # The session id is the hash of the config's canonical encoding, as sent.
            session_id=hashlib.sha256(welcome.config).digest(),
            sender=welcome.index,
            reason=reason,
            detail=detail[:200],
        )
        await self._write(call, pb.ClientFrame(abort=abort))
        await self._close_after_abort(call)
        raise _Failed(reason, detail)

    async def _close_after_abort(self, call: Any) -> None:
        """Half-close and let the server end the stream, so the Abort is read, not cancelled."""
        with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError, asyncio.CancelledError):
            await call.done_writing()
            await asyncio.wait_for(call.read(), _ABORT_GRACE)

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

    async def _refuse(
        self, call: Any, config: RoundConfig, index: int, reason: str, detail: str
    ) -> NoReturn:
        """Tell the server this client leaves the round (before round 0), then fail."""
        failure = _Failed(reason, detail)
        await self._abort(call, config, index, failure)
        raise failure

    async def _hello(self, call: Any, dim: int) -> None:
        """Read the server's Challenge and answer with a (signed, given an identity) Hello."""
        frame = await self._read(call, self._timeout, first=True)
        kind = frame.WhichOneof("body")
        if kind == "reject":
            raise _Failed(frame.reject.reason or "rejected", frame.reject.detail)
        if kind != "challenge":
            raise _Failed(DropReason.MALFORMED.value, f"expected Challenge, got {kind}")
        nonce = bytes(frame.challenge.nonce)
        if len(nonce) != CHALLENGE_BYTES:
            raise _Failed(
                DropReason.MALFORMED.value,
                f"the challenge is {len(nonce)} bytes, expected {CHALLENGE_BYTES}",
            )
        await self._write(
            call, hello_frame(PROTOCOL_VERSION, self.name, dim, nonce, self._identity)
        )

    def _check_config(self, config: RoundConfig, dim: int, bits: int | None) -> None:
        """What this client refuses whatever the server says: another D or b than its own."""
        if config.dim != dim:
            raise _Failed(DropReason.WRONG_LENGTH.value, f"the round sums D={config.dim}")
        if bits is not None and config.bits != bits:
            raise _Failed(
                AbortReason.CONFIG_MISMATCH.value,
                f"the round uses b={config.bits}; this client's input needs b={bits}",
            )

    async def _run(
        self,
        call: Any,
        data: npt.NDArray[Any],
        expected: bytes | None,
        bits: int | None,
        fields: dict[str, Any],
        tree: Any = None,
        weight: float | None = None,
        make: _Make | None = None,
    ) -> None:
        """Run the round on ``call``; fills ``fields`` (index, round, ...) as it learns them,
        so a failed round's outcome still names them. With ``make``, ``data`` only gives D and
        the input is made from the round's task once it arrived."""
        # dim 0: "the round's D" (when encoding with the announced spec, see _take_announced).
        await self._hello(call, int(data.shape[0]))
        self._progress(f"waiting to join at {self.server} as {self.name!r}")
        frame = await self._read(call, self._timeout)
        kind = frame.WhichOneof("body")
        if kind == "reject":
            raise _Failed(frame.reject.reason or "rejected", frame.reject.detail)
        if kind != "welcome":
            raise _Failed("malformed-message", f"expected Welcome, got {kind}")
        welcome = frame.welcome
        try:
            # The mode's threshold rule holds unless this client itself allows unsafe ones.
            config = RoundConfig.decode(welcome.config, allow_unsafe=self._policy.allow_unsafe)
        except UnsafeParametersError as exc:
            await self._refuse_unsafe(call, welcome, str(exc))
        except ConfigError as exc:
            raise _Failed("malformed-message", f"bad round config: {exc}") from None
        fields.update(
            index=welcome.index,
            round_id=config.round_id.hex(),
            num_clients=config.num_clients,
            round=int(welcome.round),
        )
        if not _first_time(self.name, config.session_id):
            raise _Failed(
                AbortReason.REPEATED_SESSION.value,
                "this client already took part in this session id; a fresh round has a fresh id",
            )
        if tree is not None:
            encoder, data = await self._take_announced(call, config, welcome, tree, weight)
            expected, bits = encoder.round_spec.encode(), encoder.bits
        self._check_config(config, int(data.shape[0]), bits)
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
        if self._expected_context is not None and config.context_digest != self._expected_context:
            # Refuse before the input is even checked against the round: nothing is sent but
            # the refusal.
            detail = "the round config's context digest differs from the one this client computed"
            abort = pb.Abort(
                session_id=config.session_id,
                sender=welcome.index,
                reason=AbortReason.CONTEXT_MISMATCH.value,
                detail=detail,
            )
            await self._write(call, pb.ClientFrame(abort=abort))
            raise _Failed(AbortReason.CONTEXT_MISMATCH.value, detail)
        context = self._expected_context
        task: Task | None = None
        if welcome.task_bytes:
            task = await self._receive_task(call, welcome, config)
            fields["task_digest"] = task.digest.hex()
            # The digest this client computed itself from the bytes it got: the consistency
            # round has it signed, so different tasks for different clients abort the round.
            context = task.digest
            if config.context_digest != context:
                mismatch = _Failed(
                    AbortReason.CONTEXT_MISMATCH.value,
                    "the task received differs from the round config's context digest",
                )
                await self._abort(call, config, welcome.index, mismatch)
                raise mismatch
        if make is not None:
            data = await self._make_input(call, config, welcome, make, task, bits)
        try:
            session = ClientSession(
                config,
                welcome.index,
                data,
                expected_context_digest=context,
                policy=self._policy,
                expected_spec_digest=None if expected is None else spec_digest(expected),
                **self._malicious(welcome, config),
            )
        except _Failed as failure:
            await self._abort(call, config, welcome.index, failure)
            raise
        except ConfigError as exc:
            unfit = _Failed(AbortReason.INVALID_INPUT.value, str(exc))
            await self._abort(call, config, welcome.index, unfit)
            raise unfit from None
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
            await self._close_after_abort(call)
            raise _Failed(str(session.abort_reason), session.abort_detail)
        included = session.included or ()
        fields["num_included"] = len(included)
        if welcome.index not in included:
            raise _Failed("not-included", "the round completed without this client's input")
        self._progress(f"included in the sum with {len(included)} clients")
        await call.done_writing()

    async def _make_input(
        self,
        call: Any,
        config: RoundConfig,
        welcome: pb.Welcome,
        make: _Make,
        task: Task | None,
        bits: int | None,
    ) -> npt.NDArray[Any]:
        """The user's input for this round, made from its task and checked like submit's."""
        try:
            data, bits = await make(task)
        except _Failed as failure:
            await self._abort(call, config, welcome.index, failure)
            raise
        problem = local_input_problem(data, bits, config.dim)
        if problem is None and bits is not None and config.bits != bits:
            problem = (
                AbortReason.CONFIG_MISMATCH.value,
                f"the round uses b={config.bits}; this client's input needs b={bits}",
            )
        if problem is not None:
            unfit = _Failed(*problem)
            await self._abort(call, config, welcome.index, unfit)
            raise unfit
        return data

    async def _receive_task(self, call: Any, welcome: pb.Welcome, config: RoundConfig) -> Task:
        """Read the round's task (TaskChunk frames right after Welcome)."""
        try:
            assembler = TaskAssembler(
                config.session_id, int(welcome.task_bytes), self._max_task_bytes
            )
        except FrameError as exc:
            failure = _Failed(exc.reason.value, exc.detail)
            await self._abort(call, config, welcome.index, failure)
            raise failure from None
        while not assembler.complete:
            frame = await self._read(call, self._timeout)
            kind = frame.WhichOneof("body")
            if kind == "abort":
                raise _Failed(frame.abort.reason, frame.abort.detail)
            if kind != "task_chunk":
                raise _Failed(DropReason.MALFORMED.value, f"expected TaskChunk, got {kind}")
            try:
                assembler.add(frame.task_chunk)
            except FrameError as exc:
                raise _Failed(exc.reason.value, exc.detail) from None
        self._progress(f"received the round's task ({assembler.total} bytes)")
        return Task(assembler.data(), round=int(welcome.round))


def _as_input(
    produced: Any, encoder: Encoder | None, bits: int | None
) -> tuple[npt.NDArray[Any], int | None]:
    """The ring vector (and its bit width) from what a task function returned."""
    if encoder is None:
        if isinstance(produced, tuple):
            raise ConfigError("a weight needs an encoder (integer vectors carry no weight)")
        data = np.asarray(produced)
        if data.ndim != 1 or data.shape[0] < 1:
            raise ConfigError(f"the vector must be 1-D and non-empty, got shape {data.shape}")
        return data, bits
    weight = None
    if isinstance(produced, tuple) and len(produced) == 2:
        produced, weight = produced
    return np.asarray(encoder.encode(produced, weight=weight)), encoder.bits


def local_input_problem(
    data: npt.NDArray[Any], bits: int | None, dim: int | None
) -> tuple[str, str] | None:
    """(reason, detail) when ``data`` cannot be a round input, checked without a server.

    Negative or non-integer values never fit; values of 2^bits or more do not fit ``bits``;
    another length than ``dim`` does not fit ``dim``.
    """
    if data.dtype.kind not in "iu":
        return AbortReason.INVALID_INPUT.value, f"the vector must hold integers, not {data.dtype}"
    if dim is not None and data.shape[0] != dim:
        return DropReason.WRONG_LENGTH.value, f"the vector has {data.shape[0]} values, not D={dim}"
    if data.dtype.kind == "i" and data.size and int(data.min()) < 0:
        position = int(np.argmin(data))
        return (
            AbortReason.INVALID_INPUT.value,
            f"value {int(data[position])} at position {position} is negative",
        )
    if bits is not None and bits < 64 and data.size and int(data.max()) >= 1 << bits:
        position = int(np.argmax(data))
        return (
            AbortReason.INVALID_INPUT.value,
            f"value {int(data[position])} at position {position} is not below 2^{bits}",
        )
    return None


def _jitter() -> float:
    """A factor in [0.5, 1.0) from the OS CSPRNG, so that many waiting clients spread out."""
    return 0.5 + int.from_bytes(default_random().random_bytes(4), "big") / 2**33


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
