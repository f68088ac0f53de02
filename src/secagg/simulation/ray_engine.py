"""``simulate(..., engine="ray")``: the client sessions of one round hosted on a Ray cluster.

The clients are split into batches of consecutive indices; each batch lives in one Ray actor
(thousands of :class:`ClientSession` objects), which answers every server message of its
clients in one call. The server session runs here, in the driver. In the masked-input round an
actor adds its clients' masked vectors itself and returns one partial sum: the driver never
holds n x D words, only one D-word vector per batch. The unchanged ServerSession is handed
that partial sum as the batch's first sender's vector and a shared read-only zero vector for
the batch's other senders, so its running sum and its record of who sent (U3) are exactly what
n separate messages would give.

Ray is an optional extra (``secagg[ray]``); it is imported only here, when the engine is used.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.crypto.ring import ring_mask, word_dtype
from secagg.encoding.round_spec import RAW_SPEC_DIGEST
from secagg.errors import ConfigError, RoundAbortedError
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import Mode, RoundConfig
from secagg.protocol.derive import round_graph
from secagg.protocol.messages import (
    ClientMessage,
    MaskedInput,
    Round,
    ServerMessage,
    message_size,
)
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.simulation.engine import _DESIGN_DROPOUT_RATE
from secagg.simulation.inputs import as_matrix, check_bits_arg
from secagg.simulation.result import PhaseTiming, SimulationResult, zero_based_outcome
from secagg.simulation.schedule import dropout_schedule

__all__ = ["DEFAULT_BATCH_SIZE", "simulate_ray"]

DEFAULT_BATCH_SIZE = 2000
"""Clients per actor when ``batch_size`` is not given (fewer when the cluster has more CPUs)."""

_NEVER = 99  # a stop round no client reaches


@dataclass(slots=True)
class _Step:
    """What one actor did in one protocol round."""

    replies: dict[int, ClientMessage] = field(default_factory=dict)
    # Masked-input round only: the batch's partial sum and the other senders it covers.
    partial: tuple[int, npt.NDArray[np.unsignedinteger]] | None = None
    also_sent: list[int] = field(default_factory=list)
    clients_total: float = 0.0
    client_max: float = 0.0
    clients: int = 0
    sent: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)


class ClientBatch:
    """A batch of client sessions of one round, run inside one Ray actor."""

    def __init__(
        self,
        config: RoundConfig,
        first: int,
        rows: npt.NDArray[np.unsignedinteger],
        stops: Mapping[int, int],
        seed: bytes | None,
        policy: ClientPolicy,
        spec_digest: bytes,
    ) -> None:
        self._config = config
        self._first = first
        self._rows = rows
        self._stops = dict(stops)
        self._rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed)
        self._policy = policy
        self._spec_digest = spec_digest
        self._identities: dict[int, Any] = {}
        self._sessions: dict[int, ClientSession] = {}
        if config.mode == "malicious":
            from secagg.crypto.signing import SigningKey

            self._identities = {
                first + i: SigningKey.generate(self._rng) for i in range(rows.shape[0])
            }

    def public_identities(self) -> dict[int, bytes]:
        """Malicious mode: the batch's Ed25519 public keys, for the round's registry."""
        return {i: k.public_bytes for i, k in self._identities.items()}

    def open(self, registry_keys: Mapping[int, bytes] | None) -> int:
        """Create the sessions (malicious mode: with the whole round's identity registry)."""
        registry = None
        if registry_keys is not None:
            from secagg.protocol.identity import MappingRegistry

            registry = MappingRegistry(dict(registry_keys))
        config = self._config
        graph = (
            None
            if config.mode == "malicious"
            else round_graph(config.graph_seed, config.num_clients, config.degree)
        )
        for offset in range(self._rows.shape[0]):
            index = self._first + offset
            self._sessions[index] = ClientSession(
                config,
                index,
                self._rows[offset],
                rng=self._rng,
                graph=graph,
                identity=self._identities.get(index),
                registry=registry,
                policy=self._policy,
                expected_spec_digest=self._spec_digest,
            )
        self._rows = self._rows[:0]  # the sessions hold their inputs now
        return len(self._sessions)

    def start(self) -> _Step:
        """Round 0: every client that does not drop before it advertises its keys."""
        step = _Step()
        for index, session in self._sessions.items():
            if self._stops.get(index, _NEVER) <= Round.ADVERTISE_KEYS:
                continue
            self._run(step, index, session.start)
        return step

    def step(self, round_: int, outbox: Mapping[int, ServerMessage], final: bool) -> _Step:
        """Deliver the server's messages of one round; masked inputs come back as one sum."""
        step = _Step()
        for index, msg in outbox.items():
            step.received[index] = message_size(msg)
            session = self._sessions[index]
            if session.state.value in ("done", "aborted"):
                continue
            if self._stops.get(index, _NEVER) <= round_:
                continue
            self._run(step, index, functools.partial(session.receive, msg))
        if final:
            step.clients_total = step.client_max = 0.0
            step.clients = 0
        masked = {i: r for i, r in step.replies.items() if isinstance(r, MaskedInput)}
        if masked:  # an Abort (a client that gave up) still goes to the server as itself
            step.partial, step.also_sent = _partial_sum(masked, self._config.bits)
            step.replies = {i: r for i, r in step.replies.items() if i not in masked}
        return step

    def _run(self, step: _Step, index: int, act: Callable[[], ClientMessage | None]) -> None:
        start = time.perf_counter()
        reply = act()
        elapsed = time.perf_counter() - start
        step.clients_total += elapsed
        step.client_max = max(step.client_max, elapsed)
        step.clients += 1
        if reply is not None:
            step.replies[index] = reply
            step.sent[index] = message_size(reply)


def _partial_sum(
    replies: Mapping[int, MaskedInput], bits: int
) -> tuple[tuple[int, npt.NDArray[np.unsignedinteger]], list[int]]:
    """Add the batch's masked vectors (wrapping in the word type, as the server's sum does)."""
    senders = sorted(replies)
    total = np.zeros_like(replies[senders[0]].vector)
    for index in senders:
        np.add(total, replies[index].vector, out=total)
    if bits not in (32, 64):
        # The server refuses words above b bits; 2^b divides the word size, so reducing the
        # partial sum changes nothing mod 2^b.
        np.bitwise_and(total, ring_mask(bits), out=total)
    return (senders[0], total), senders[1:]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("engine='ray' needs Ray: pip install 'secagg[ray]'") from None
    return ray


def simulate_ray(
    inputs: Any,
    *,
    bits: int,
    degree: int | None = None,
    threshold: int | None = None,
    dropout: float | Mapping[int, int | str | Round] = 0.0,
    dropout_round: int | str | Round | None = None,
    mode: Mode = "semi-honest",
    seed: int | bytes | str | None = None,
    allow_unsafe: bool = False,
    corrupt_rate: float = 0.05,
    progress: Callable[[str, int], None] | None = None,
    design_dropout_rate: float | None = None,
    context_digest: bytes | None = None,
    batch_size: int | None = None,
    ray_address: str | None = None,
    spec_digest: bytes = RAW_SPEC_DIGEST,
) -> SimulationResult:
    """One round with the clients in Ray actors; the arguments mean what they do in simulate.

    ``batch_size`` is the number of clients per actor (default: the clients spread over the
    cluster's CPUs, at most :data:`DEFAULT_BATCH_SIZE` each). Uses the running Ray instance
    when there is one, else connects to ``ray_address`` (None: a local instance it shuts down
    afterwards). Raises :class:`RoundAbortedError` when too few clients survive.
    """
    ray = _ray()
    rows = as_matrix(inputs, bits)
    n, dim = rows.shape
    if n < 2:
        raise ConfigError(f"need at least 2 clients, got {n}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed)
    schedule = dropout_schedule(n, dropout, dropout_round, rng).stops  # 1-based indices
    rate_hint = len(schedule) / n if schedule else 0.0
    design = (
        min(max(rate_hint, _DESIGN_DROPOUT_RATE), 0.5)
        if design_dropout_rate is None
        else design_dropout_rate
    )
    extra: dict[str, Any] = {} if context_digest is None else {"context_digest": context_digest}
    config = RoundConfig.create(
        n,
        dim,
        bits,
        degree=degree,
        dropout_rate=design,
        threshold=threshold,
        mode=mode,
        corrupt_rate=corrupt_rate,
        allow_unsafe=allow_unsafe,
        rng=rng,
        spec_digest=spec_digest,
        **extra,
    )
    policy = ClientPolicy(
        corrupt_rate=corrupt_rate,
        dropout_rate=design,
        allow_weak_parameters=degree is not None or threshold is not None,
        allow_unsafe=allow_unsafe,
    )
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    try:
        cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1.0)))
        size = batch_size or min(DEFAULT_BATCH_SIZE, math.ceil(n / cpus))
        starts = list(range(0, n, size))
        # The actors reserve no CPU: the driver calls them in lockstep, one call per protocol
        # round, so they never compete with each other for long; reserving cores would leave
        # batches beyond the core count pending forever. SPREAD puts them on every node.
        actor_cls = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(ClientBatch)
        stops = {c: int(r) for c, r in schedule.items()}
        actors = [
            actor_cls.remote(
                config,
                s + 1,
                rows[s : s + size],
                {i: r for i, r in stops.items() if s < i <= s + size},
                None if seed is None else rng.random_bytes(32),
                policy,
                spec_digest,
            )
            for s in starts
        ]
        registry_keys = None
        if mode == "malicious":
            registry_keys = {}
            for keys in ray.get([a.public_identities.remote() for a in actors]):
                registry_keys.update(keys)
        ray.get([a.open.remote(registry_keys) for a in actors])
        registry = None
        if registry_keys is not None:
            from secagg.protocol.identity import MappingRegistry

            registry = MappingRegistry(registry_keys)
        server = ServerSession(config, registry=registry)
        try:
            return _drive(ray, config, actors, size, server, progress)
        except RoundAbortedError as exc:
            found = config.parameters
            if found is None or found.meets_correctness or degree is not None:
                raise
            raise RoundAbortedError(
                exc.reason, f"{exc.detail}; the finder chose {found.describe()}"
            ) from exc
        finally:
            for actor in actors:
                ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()


def _drive(
    ray: Any,
    config: RoundConfig,
    actors: list[Any],
    size: int,
    server: ServerSession,
    progress: Callable[[str, int], None] | None,
) -> SimulationResult:
    """The round loop of the in-process engine, with each batch answered by its actor."""
    n = config.num_clients
    sent = dict.fromkeys(range(1, n + 1), 0)
    received = dict.fromkeys(range(1, n + 1), 0)
    timings: dict[str, PhaseTiming] = {}
    server_sent = server_received = 0
    zeros = np.zeros(config.dim, dtype=word_dtype(config.bits))
    zeros.setflags(write=False)

    def collect(steps: list[_Step], timing: PhaseTiming) -> None:
        nonlocal server_received
        for step in steps:
            timing.clients_total += step.clients_total
            timing.client_max = max(timing.client_max, step.client_max)
            timing.clients += step.clients
            for index, count in step.received.items():
                received[index] += count
            for index, count in step.sent.items():
                sent[index] += count
                server_received += count
        start = time.perf_counter()
        for step in steps:
            for reply in step.replies.values():
                server.receive(reply)
            if step.partial is not None:
                first, vector = step.partial
                server.receive(MaskedInput(config.session_id, first, vector))
                for index in step.also_sent:
                    server.receive(MaskedInput(config.session_id, index, zeros))
        timing.server += time.perf_counter() - start

    if progress is not None:
        progress(Round.ADVERTISE_KEYS.label, n)
    timing0 = timings.setdefault(Round.ADVERTISE_KEYS.label, PhaseTiming())
    collect(ray.get([a.start.remote() for a in actors]), timing0)
    while server.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
        current = server.collecting
        assert current is not None
        timing = timings.setdefault(current.label, PhaseTiming())
        start = time.perf_counter()
        outbox = server.advance()
        timing.server += time.perf_counter() - start
        server_sent += sum(message_size(m) for m in outbox.values())
        final = server.phase in (ServerPhase.DONE, ServerPhase.ABORTED)
        round_ = Round.UNMASKING if final else server.collecting
        assert round_ is not None
        if progress is not None and not final:
            progress(round_.label, len(outbox))
        parts: list[dict[int, ServerMessage]] = [{} for _ in actors]
        for index, msg in outbox.items():
            parts[(index - 1) // size][index] = msg
        steps = ray.get(
            [
                a.step.remote(int(round_), part, final)
                for a, part in zip(actors, parts, strict=True)
                if part
            ]
        )
        collect(steps, PhaseTiming() if final else timings.setdefault(round_.label, PhaseTiming()))
    result = server.result  # raises RoundAbortedError when the round aborted
    included, dropped = zero_based_outcome(result)
    return SimulationResult(
        total=result.total,
        included=included,
        dropped=dropped,
        config=config,
        timings=timings,
        client_bytes_sent=[sent[i] for i in sorted(sent)],
        client_bytes_received=[received[i] for i in sorted(received)],
        server_bytes_sent=server_sent,
        server_bytes_received=server_received,
    )


_ENGINES = ("local", "ray")
_RAY_OPTIONS = ("batch_size", "ray_address")


def dispatch(arguments: dict[str, Any]) -> SimulationResult:
    """Run ``simulate``'s arguments (its ``locals()``) on the engine they name."""
    engine = arguments.pop("engine")
    options: dict[str, Any] = arguments.pop("engine_options")
    if engine not in _ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(_ENGINES)}; got {engine!r}")
    unknown = sorted(set(options) - set(_RAY_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown simulate() option(s) {', '.join(unknown)}; the ray engine takes "
            f"{', '.join(_RAY_OPTIONS)}"
        )
    if engine != "ray":
        raise ConfigError(f"{', '.join(sorted(options))} need engine='ray'")
    if arguments.pop("clip") is not None:
        raise ConfigError(
            "engine='ray' sums integer vectors: encode floats with secagg.Encoder first"
        )
    if arguments.pop("workers") != 1:
        raise ConfigError("workers= spreads the local engine's unmasking; drop it with 'ray'")
    if arguments.pop("observer", None) is not None:  # where simulate has one
        raise ConfigError("observer= watches the local engine's driver; engine='ray' has none")
    for name, default in (
        ("weights", None),
        ("dp", None),
        ("report_clipping", False),
        ("max_weight", None),
        ("quant_bits", 16),
        ("clip_mode", "coordinate"),
    ):
        if arguments.pop(name, default) != default:
            raise ConfigError(f"{name}= needs float mode, which engine='ray' does not run")
    bits = arguments.pop("bits")
    if bits is None:
        raise ConfigError("bits is required for integer inputs")
    return simulate_ray(arguments.pop("inputs"), bits=check_bits_arg(bits), **arguments, **options)
