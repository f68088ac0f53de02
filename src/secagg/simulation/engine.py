"""Run a whole round in one process: many ClientSessions and a ServerSession, with dropouts.

This is the researcher's entry point (``secagg.simulate``) and what ``secagg simulate`` runs:
real cryptography and real messages, only the network replaced by direct calls through the
sans-IO driver (:func:`secagg.protocol.driver.run_round`), timed by an observer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.encoding import DPConfig, Encoder, EncodingSpec
from secagg.encoding.round_spec import RAW_SPEC_DIGEST
from secagg.errors import ConfigError, EncodingError, RoundAbortedError
from secagg.graph import NeighbourGraph
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import Mode, RoundConfig
from secagg.protocol.driver import run_round
from secagg.protocol.messages import Round
from secagg.protocol.observer import Observers, RoundObserver
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.simulation.inputs import as_matrix, check_bits_arg, check_weight
from secagg.simulation.result import PhaseTiming, SimulationResult, zero_based_outcome
from secagg.simulation.schedule import Dropout, dropout_schedule
from secagg.simulation.timing import TimingObserver

__all__ = ["PhaseTiming", "RoundParams", "SimulationResult", "simulate"]

_DESIGN_DROPOUT_RATE = 0.05  # ClientPolicy's default assumption


@dataclass(frozen=True, slots=True)
class RoundParams:
    """How to run a simulated round, whatever its inputs: :func:`simulate`'s keywords once."""

    degree: int | None = None
    threshold: int | None = None
    dropout: Dropout = 0.0
    dropout_round: int | str | Round | None = None
    mode: Mode = "semi-honest"
    seed: int | bytes | str | None = None
    allow_unsafe: bool = False
    corrupt_rate: float = 0.05
    progress: Callable[[str, int], None] | None = None
    workers: int = 1
    design_dropout_rate: float | None = None
    context_digest: bytes | None = None
    observer: RoundObserver | None = None

    def design_rate(self, injected: float) -> float:
        """The dropout rate the finder designs k and t for.

        At least the 5% default unless given, so a round that injects none still gets
        parameters that default clients accept; more injected dropout asks for more.
        """
        if self.design_dropout_rate is not None:
            return self.design_dropout_rate
        return min(max(injected, _DESIGN_DROPOUT_RATE), 0.5)


def _run_round(
    inputs: npt.ArrayLike, bits: int, params: RoundParams, spec_digest: bytes = RAW_SPEC_DIGEST
) -> SimulationResult:
    """Run one round over ``inputs`` (n vectors of D integers mod 2^bits); see :func:`simulate`.

    Raises :class:`RoundAbortedError` when too few clients survive; never returns a partial sum.
    """
    rows = as_matrix(inputs, bits)
    n, dim = rows.shape
    if n < 2:
        raise ConfigError(f"need at least 2 clients, got {n}")
    rng: RandomSource = SystemRandom() if params.seed is None else DeterministicRandom(params.seed)
    schedule = dropout_schedule(n, params.dropout, params.dropout_round, rng)
    design = params.design_rate(len(schedule.stops) / n)
    config = round_config(n, dim, bits, params, design, rng, spec_digest)
    # Malicious mode: the clients derive the graph by commit-reveal during the round.
    graph = (
        None
        if params.mode == "malicious"
        else NeighbourGraph(config.graph_seed, range(1, n + 1), config.degree)
    )
    clients, registry = _clients(config, rows, params, design, rng, graph, spec_digest)
    timing = TimingObserver(n, params.progress)
    observer = timing if params.observer is None else Observers(timing, params.observer)
    pool = None
    if params.workers > 1:
        from secagg.parallel.pool import MaskPool

        pool = MaskPool(params.workers)
    try:
        server = ServerSession(
            config,
            graph=graph,
            registry=registry,
            expand_masks=None if pool is None else pool.add_many,
        )
        run_round(server, clients, schedule, observer)
        return _result(server, config, timing)
    except RoundAbortedError as exc:
        explain_abort(exc, config, params)
        raise
    finally:
        if pool is not None:
            pool.close()


def explain_abort(exc: RoundAbortedError, config: RoundConfig, params: RoundParams) -> None:
    """Raise ``exc`` again with the finder's numbers when it chose the parameters knowing they
    miss its correctness target; otherwise return (the caller re-raises ``exc`` as it is)."""
    found = config.parameters
    if found is None or found.meets_correctness or params.degree is not None:
        return
    detail = f"{exc.detail}; the finder chose {found.describe()}"
    raise RoundAbortedError(exc.reason, detail) from exc


def round_config(
    n: int,
    dim: int,
    bits: int,
    params: RoundParams,
    design: float,
    rng: RandomSource,
    spec_digest: bytes,
) -> RoundConfig:
    """The simulated round's config: the finder's k and t for ``design`` unless given."""
    create: dict[str, Any] = {}
    if params.context_digest is not None:
        create["context_digest"] = params.context_digest
    return RoundConfig.create(
        n,
        dim,
        bits,
        degree=params.degree,
        dropout_rate=design,
        threshold=params.threshold,
        mode=params.mode,
        corrupt_rate=params.corrupt_rate,
        allow_unsafe=params.allow_unsafe,
        rng=rng,
        spec_digest=spec_digest,
        **create,
    )


def _clients(
    config: RoundConfig,
    rows: npt.NDArray[np.unsignedinteger],
    params: RoundParams,
    design: float,
    rng: RandomSource,
    graph: NeighbourGraph | None,
    spec_digest: bytes,
) -> tuple[dict[int, ClientSession], Any]:
    """The n client sessions (and, in malicious mode, the registry of their identities)."""
    n = config.num_clients
    policy = round_policy(params, design)
    identities = registry = None
    if params.mode == "malicious":
        from secagg.crypto.signing import SigningKey
        from secagg.protocol.identity import MappingRegistry

        identities = {i: SigningKey.generate(rng) for i in range(1, n + 1)}
        registry = MappingRegistry({i: k.public_bytes for i, k in identities.items()})
    clients = {
        i + 1: ClientSession(
            config,
            i + 1,
            rows[i],
            # Seeded: one forked stream per client, drawn in client order.
            rng=rng if params.seed is None else _fork(rng, "client"),
            graph=graph,
            identity=None if identities is None else identities[i + 1],
            registry=registry,
            policy=policy,
            # Each client checks the round's spec is the one it encoded with.
            expected_spec_digest=spec_digest,
        )
        for i in range(n)
    }
    return clients, registry


def round_policy(params: RoundParams, design: float) -> ClientPolicy:
    """The floor every simulated client judges the config with: the simulation's own
    assumptions. A degree or threshold given explicitly is the caller's choice for every client,
    so it is accepted even below that floor (the mode's threshold rule still needs
    allow_unsafe)."""
    return ClientPolicy(
        corrupt_rate=params.corrupt_rate,
        dropout_rate=design,
        allow_weak_parameters=params.degree is not None or params.threshold is not None,
        allow_unsafe=params.allow_unsafe,
    )


def _fork(rng: RandomSource, label: str) -> RandomSource:
    assert isinstance(rng, DeterministicRandom)
    return rng.fork(label)


def _result(server: ServerSession, config: RoundConfig, timing: TimingObserver) -> SimulationResult:
    result = server.result  # raises RoundAbortedError when the round aborted
    included, dropped = zero_based_outcome(result)
    return SimulationResult(
        total=result.total,
        included=included,
        dropped=dropped,
        config=config,
        timings=timing.timings,
        client_bytes_sent=[timing.client_sent[i] for i in sorted(timing.client_sent)],
        client_bytes_received=[timing.client_received[i] for i in sorted(timing.client_received)],
        server_bytes_sent=timing.server_sent,
        server_bytes_received=timing.server_received,
    )


def _other_engine(arguments: dict[str, Any]) -> SimulationResult:
    from secagg.simulation.ray_engine import dispatch  # Ray loads only when asked for

    return dispatch(arguments)


def simulate(
    inputs: Any,
    *,
    bits: int | None = None,
    degree: int | None = None,
    threshold: int | None = None,
    dropout: float | Mapping[int, int | str | Round] = 0.0,
    dropout_round: int | str | Round | None = None,
    mode: Mode = "semi-honest",
    seed: int | bytes | str | None = None,
    allow_unsafe: bool = False,
    corrupt_rate: float = 0.05,
    progress: Callable[[str, int], None] | None = None,
    workers: int = 1,
    design_dropout_rate: float | None = None,
    clip: float | None = None,
    quant_bits: int = 16,
    clip_mode: str = "coordinate",
    weights: Sequence[float] | None = None,
    max_weight: float | None = None,
    report_clipping: bool = False,
    dp: DPConfig | None = None,
    context_digest: bytes | None = None,
    observer: RoundObserver | None = None,
    engine: str = "local",
    **engine_options: Any,
) -> SimulationResult:
    """Run one secure-aggregation round in-process, with real cryptography and dropouts.

    Integer mode (``clip`` is None): ``inputs`` are n vectors of D integers in 0..2^bits-1 and
    ``bits`` is required. Float mode (``clip`` given): ``inputs`` are n float arrays or pytrees
    (dicts/lists/tuples of NumPy arrays or torch tensors); each is clipped to [-clip, clip]
    (``clip_mode="l2"``: by L2 norm), quantized to ``quant_bits`` with unbiased stochastic
    rounding and encoded; the result's ``.sum`` and ``.mean`` (with ``weights``: instead
    ``.weighted_sum``, ``.total_weight`` and ``.weighted_mean``, since a weighted round
    aggregates only w * x and w) are the decoded floats, ``.decoded`` has error bounds and
    clipping totals. ``bits`` is then chosen so the sum cannot wrap; an explicit one that could
    is refused.

    ``dropout`` is either a rate (that fraction of clients, chosen at random, drop at
    ``dropout_round`` or at a random round when it is None) or an explicit schedule
    ``{client: round}`` (0-based clients; rounds as numbers 0..4 or names such as
    ``"masked-input"``): the client sends nothing from that round on. ``degree`` and
    ``threshold`` default to the parameter finder's choice for n, ``design_dropout_rate``
    (default: the fraction of clients ``dropout`` drops, at least 5%; it only tunes k and t and
    drops no one) and ``corrupt_rate``; ``result.config.parameters`` holds their failure bounds
    (for small n the finder may miss the correctness target and says so there, with the abort
    probability). The simulated clients check the config with
    :class:`~secagg.protocol.policy.ClientPolicy` at those rates; an explicit ``degree`` or
    ``threshold`` is the caller's own choice and is accepted below that floor.
    ``seed`` makes keys, graph, rounding and dropouts reproducible (never in production).
    ``progress(round_name, clients)`` is called as each round starts; ``observer`` (a
    :class:`~secagg.protocol.observer.RoundObserver`) hears every event of the round (client
    and server steps, messages, drops) to measure what it wants. ``workers`` > 1 spreads
    the server's mask removal over that many processes. ``context_digest`` (32 bytes) is bound
    into the round config, hence into every key derivation and signature.
    ``engine="ray"`` hosts the clients in Ray actors (integer mode; options ``batch_size``,
    ``ray_address``; see :mod:`secagg.simulation.ray_engine`).

    Raises :class:`RoundAbortedError` when too few clients survive; never returns a partial sum.
    """
    if engine != "local" or engine_options:  # e.g. "ray": the clients live elsewhere
        return _other_engine(dict(locals()))
    bits = _checked_bits(workers, bits)
    params = RoundParams(
        degree=degree,
        threshold=threshold,
        dropout=dropout,
        dropout_round=dropout_round,
        mode=mode,
        seed=seed,
        allow_unsafe=allow_unsafe,
        corrupt_rate=corrupt_rate,
        progress=progress,
        workers=workers,
        design_dropout_rate=design_dropout_rate,
        context_digest=context_digest,
        observer=observer,
    )
    if clip is None:
        return _run_round(inputs, _integer_bits(bits, weights, dp, report_clipping), params)
    clients, weights, max_weight = _float_clients(inputs, weights, max_weight)
    spec = EncodingSpec(
        clip=clip,
        quant_bits=quant_bits,
        clip_mode=clip_mode,  # type: ignore[arg-type]
        weighted=weights is not None,
        max_weight=max_weight,
        report_clipping=report_clipping,
        dp=dp,
    )
    return _run_float_round(clients, spec, weights, bits, params)


def _checked_bits(workers: int, bits: int | None) -> int | None:
    """:func:`simulate`'s ``workers`` checked, and its ``bits`` if given."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    return None if bits is None else check_bits_arg(bits)


def _integer_bits(
    bits: int | None, weights: Sequence[float] | None, dp: DPConfig | None, report_clipping: bool
) -> int:
    """The bits of an integer-mode :func:`simulate`, which takes none of the float options."""
    if weights is not None or dp is not None or report_clipping:
        raise ConfigError("weights, dp and report_clipping need float mode: pass clip=")
    if bits is None:
        raise ConfigError("bits is required for integer inputs (or pass clip= for floats)")
    return bits


def _float_clients(
    inputs: Any, weights: Sequence[float] | None, max_weight: float | None
) -> tuple[list[Any], list[float] | None, float | None]:
    """The per-client pytrees, their weights as floats, and the weight bound."""
    try:
        clients = list(inputs)
    except TypeError:
        raise ConfigError(
            f"inputs must be a sequence of per-client arrays or pytrees, got "
            f"{type(inputs).__name__}"
        ) from None
    if len(clients) < 2:
        raise ConfigError(f"need at least 2 clients, got {len(clients)}")
    checked = None
    if weights is not None:
        checked = [check_weight(i, w) for i, w in enumerate(weights)]
        if len(checked) != len(clients):
            raise ConfigError(f"got {len(checked)} weights for {len(clients)} clients")
        if max_weight is None:
            max_weight = max(max(checked), 1e-12)
    return clients, checked, max_weight


def _run_float_round(
    clients: list[Any],
    spec: EncodingSpec,
    weights: Sequence[float] | None,
    bits: int | None,
    params: RoundParams,
) -> SimulationResult:
    """Encode each client's floats, run the round, decode the sum."""
    encoder = Encoder(spec, clients[0], n_clients=len(clients), bits=bits)
    seed = params.seed
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed).fork("enc")
    rows = np.empty((len(clients), encoder.dim), dtype=encoder.dtype)
    for i, tree in enumerate(clients):
        try:
            rows[i] = encoder.encode(tree, weight=None if weights is None else weights[i], rng=rng)
        except EncodingError as exc:
            raise EncodingError(f"client {i}: {exc}") from None
    result = _run_round(rows, encoder.bits, params, encoder.spec_digest)
    result.decoded = encoder.decode(
        result.total, n_included=len(result.included), spec_digest=result.config.spec_digest
    )
    return result
