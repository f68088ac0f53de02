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
from collections.abc import Callable
from typing import Any, Final, Literal

import grpc
import numpy as np
import numpy.typing as npt

from secagg.crypto.signing import SigningKey
from secagg.encoding import Encoder
from secagg.encoding.context import CONTEXT_DIGEST_BYTES
from secagg.encoding.round_spec import RoundSpec, spec_digest
from secagg.encoding.task import Task
from secagg.errors import ConfigError, EncodingError
from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.messages import Round
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason, RejectReason
from secagg.transport.client_connect import BACKOFF_FIRST, BACKOFF_MAX, ClientConnectMixin
from secagg.transport.client_input import as_input, local_input_problem
from secagg.transport.client_outcome import (
    SESSION_MEMORY,
    Failed,
    Outcome,
    jitter,
)
from secagg.transport.client_round import MakeInput
from secagg.transport.clock import Clock, SystemClock

__all__ = [
    "ANNOUNCED",
    "SESSION_MEMORY",
    "Client",
    "Outcome",
    "TaskFunction",
    "channel_credentials",
    "local_input_problem",
]

# ``submit(tree, encoder=ANNOUNCED)``: encode with the spec the round announces in Welcome.
ANNOUNCED: Final = "announced"


def channel_credentials(
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials verifying the server against ``root_certificates`` (system roots if None)."""
    return grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)


# What a task function may return: a vector or pytree, or (pytree, weight) with an encoder.
TaskFunction = Callable[[Task | None], Any]
# participate: reasons to try the same round again, and reasons to stop the loop.
_RETRY_REASONS = frozenset({RejectReason.DUPLICATE_NAME.value, RejectReason.SERVER_FULL.value})
_FINAL_REASONS = frozenset(
    {RejectReason.NO_ROUND.value, AbortReason.SERVER_UNREACHABLE.value,
     AbortReason.SERVER_SHUTDOWN.value}
)  # fmt: skip
_MAX_RETRIES = 20


class Client(ClientConnectMixin):
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
    an Abort to the server and before any key is advertised. Every wait and retry reads
    ``clock`` (default: the event loop's; see :mod:`secagg.transport.clock`).
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
        clock: Clock | None = None,
    ) -> None:
        _check_arguments(server, wait, timeout, expected_context_digest, bits, dim)
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
        self._clock: Clock = clock or SystemClock()

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
                return as_input(produced, encoder, self._bits)
            except (ConfigError, EncodingError, ValueError, TypeError) as exc:
                raise Failed(AbortReason.INVALID_INPUT.value, str(exc)[:200]) from None

        expected = None if encoder is None else encoder.round_spec.encode()
        bits = encoder.bits if encoder is not None else self._bits
        shape = np.zeros(dim, dtype=np.uint64)  # D for the Hello; the input comes from make
        outcomes: list[Outcome] = []
        for _ in range(rounds):
            outcome = await self._one_round(shape, bits, expected, make)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if outcome.reason in _FINAL_REASONS:
                break
        return outcomes

    async def _one_round(
        self, shape: npt.NDArray[Any], bits: int | None, expected: bytes | None, make: MakeInput
    ) -> Outcome:
        """One round of :meth:`participate`, retried with backoff while the server says the
        name is still held or it is full."""
        outcome = await self._submit_attempts(shape, bits, expected, None, None, make)
        delay = BACKOFF_FIRST
        retries = 0
        while outcome.reason in _RETRY_REASONS and retries < _MAX_RETRIES:
            retries += 1
            await self._clock.sleep(delay * jitter())
            delay = min(BACKOFF_MAX, 2 * delay)
            outcome = await self._submit_attempts(shape, bits, expected, None, None, make)
        return outcome

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


def _check_arguments(
    server: str,
    wait: float,
    timeout: float,
    expected_context_digest: bytes | None,
    bits: int | None,
    dim: int | None,
) -> None:
    """Refuse a Client's impossible arguments (ConfigError naming the argument)."""
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
