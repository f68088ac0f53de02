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

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.crypto.ring import word_dtype
from secagg.encoding.round_spec import RAW_SPEC_DIGEST
from secagg.errors import ConfigError, RoundAbortedError
from secagg.protocol.config import Mode, RoundConfig
from secagg.protocol.identity import IdentityRegistry, MappingRegistry
from secagg.protocol.messages import (
    MaskedInput,
    Round,
    ServerMessage,
    message_size,
)
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.simulation.engine import RoundParams, explain_abort, round_config, round_policy
from secagg.simulation.inputs import as_matrix, check_bits_arg
from secagg.simulation.ray_batch import BatchStep, ClientBatch
from secagg.simulation.result import PhaseTiming, SimulationResult, zero_based_outcome
from secagg.simulation.schedule import dropout_schedule

__all__ = ["DEFAULT_BATCH_SIZE", "simulate_ray"]

DEFAULT_BATCH_SIZE = 2000
"""Clients per actor when ``batch_size`` is not given (fewer when the cluster has more CPUs)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("engine='ray' needs Ray: pip install 'secagg[ray]'") from None
    return ray


def _check_batch(n: int, batch_size: int | None) -> None:
    if n < 2:
        raise ConfigError(f"need at least 2 clients, got {n}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")


def _spawn(
    ray: Any,
    config: RoundConfig,
    rows: npt.NDArray[np.unsignedinteger],
    size: int,
    schedule: Mapping[int, Round],
    seeds: RandomSource | None,
    policy: ClientPolicy,
    spec_digest: bytes,
) -> tuple[list[Any], IdentityRegistry | None]:
    """One actor per batch of ``size`` clients, sessions open; the round's identity registry."""
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
            None if seeds is None else seeds.random_bytes(32),
            policy,
            spec_digest,
        )
        for s in range(0, rows.shape[0], size)
    ]
    registry_keys: dict[int, bytes] | None = None
    if config.mode == "malicious":
        registry_keys = {}
        for keys in ray.get([a.public_identities.remote() for a in actors]):
            registry_keys.update(keys)
    ray.get([a.open.remote(registry_keys) for a in actors])
    registry = None if registry_keys is None else MappingRegistry(registry_keys)
    return actors, registry


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
    _check_batch(rows.shape[0], batch_size)
    # The same round as the local engine makes from these arguments: config, floor, dropouts.
    params = RoundParams(
        degree=degree,
        threshold=threshold,
        mode=mode,
        seed=seed,
        allow_unsafe=allow_unsafe,
        corrupt_rate=corrupt_rate,
        design_dropout_rate=design_dropout_rate,
        context_digest=context_digest,
    )
    n, dim = rows.shape
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed)
    schedule = dropout_schedule(n, dropout, dropout_round, rng).stops  # 1-based
    design = params.design_rate(len(schedule) / n)
    config = round_config(n, dim, bits, params, design, rng, spec_digest)
    policy = round_policy(params, design)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    try:
        cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1.0)))
        size = batch_size or min(DEFAULT_BATCH_SIZE, math.ceil(config.num_clients / cpus))
        actors, registry = _spawn(
            ray, config, rows, size, schedule, None if seed is None else rng, policy, spec_digest
        )
        server = ServerSession(config, registry=registry)
        try:
            return _drive(ray, config, actors, size, server, progress)
        except RoundAbortedError as exc:
            explain_abort(exc, config, params)
            raise
        finally:
            for actor in actors:
                ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()


class _Tally:
    """Bytes and timings of a Ray round, and the server fed with each round's batch steps."""

    def __init__(self, config: RoundConfig, server: ServerSession) -> None:
        n = config.num_clients
        self.config = config
        self.server = server
        self.sent = dict.fromkeys(range(1, n + 1), 0)
        self.received = dict.fromkeys(range(1, n + 1), 0)
        self.timings: dict[str, PhaseTiming] = {}
        self.server_sent = self.server_received = 0
        self.zeros = np.zeros(config.dim, dtype=word_dtype(config.bits))
        self.zeros.setflags(write=False)

    def collect(self, steps: list[BatchStep], timing: PhaseTiming) -> None:
        """Count the batches' work and hand their replies to the server."""
        for step in steps:
            timing.clients_total += step.clients_total
            timing.client_max = max(timing.client_max, step.client_max)
            timing.clients += step.clients
            for index, count in step.received.items():
                self.received[index] += count
            for index, count in step.sent.items():
                self.sent[index] += count
                self.server_received += count
        start = time.perf_counter()
        sid = self.config.session_id
        for step in steps:
            for reply in step.replies.values():
                self.server.receive(reply)
            if step.partial is not None:
                first, vector = step.partial
                self.server.receive(MaskedInput(sid, first, vector))
                for index in step.also_sent:
                    self.server.receive(MaskedInput(sid, index, self.zeros))
        timing.server += time.perf_counter() - start

    def result(self) -> SimulationResult:
        """The round's result (raises RoundAbortedError when it aborted)."""
        result = self.server.result
        included, dropped = zero_based_outcome(result)
        return SimulationResult(
            total=result.total,
            included=included,
            dropped=dropped,
            config=self.config,
            timings=self.timings,
            client_bytes_sent=[self.sent[i] for i in sorted(self.sent)],
            client_bytes_received=[self.received[i] for i in sorted(self.received)],
            server_bytes_sent=self.server_sent,
            server_bytes_received=self.server_received,
        )


def _drive(
    ray: Any,
    config: RoundConfig,
    actors: list[Any],
    size: int,
    server: ServerSession,
    progress: Callable[[str, int], None] | None,
) -> SimulationResult:
    """The round loop of the in-process engine, with each batch answered by its actor."""
    tally = _Tally(config, server)
    if progress is not None:
        progress(Round.ADVERTISE_KEYS.label, config.num_clients)
    timing0 = tally.timings.setdefault(Round.ADVERTISE_KEYS.label, PhaseTiming())
    tally.collect(ray.get([a.start.remote() for a in actors]), timing0)
    while server.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
        current = server.collecting
        assert current is not None
        timing = tally.timings.setdefault(current.label, PhaseTiming())
        start = time.perf_counter()
        outbox = server.advance()
        timing.server += time.perf_counter() - start
        tally.server_sent += sum(message_size(m) for m in outbox.values())
        final = server.phase in (ServerPhase.DONE, ServerPhase.ABORTED)
        round_ = Round.UNMASKING if final else server.collecting
        assert round_ is not None
        if progress is not None and not final:
            progress(round_.label, len(outbox))
        parts: list[dict[int, ServerMessage]] = [{} for _ in actors]
        for index, msg in outbox.items():
            parts[(index - 1) // size][index] = msg
        calls = [
            a.step.remote(int(round_), part, final)
            for a, part in zip(actors, parts, strict=True)
            if part
        ]
        # The final delivery is not a protocol round of its own: it is not timed.
        tally.collect(
            ray.get(calls),
            PhaseTiming() if final else tally.timings.setdefault(round_.label, PhaseTiming()),
        )
    return tally.result()


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
