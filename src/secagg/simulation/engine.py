"""Run a whole round in one process: many ClientSessions and a ServerSession, with dropouts.

This is the researcher's entry point (``secagg.simulate``) and what ``secagg simulate`` runs:
real cryptography and real messages, only the network replaced by direct calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.crypto.prg import check_bits, word_dtype
from secagg.encoding import DecodedResult, DPConfig, Encoder, EncodingSpec
from secagg.encoding.round_spec import RAW_SPEC_DIGEST
from secagg.errors import ConfigError, EncodingError, RoundAbortedError
from secagg.graph import NeighbourGraph
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import Mode, RoundConfig
from secagg.protocol.messages import (
    ClientMessage,
    Round,
    ServerMessage,
    message_size,
)
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase

__all__ = ["PhaseTiming", "SimulationResult", "simulate"]

_DESIGN_DROPOUT_RATE = 0.05  # ClientPolicy's default assumption


@dataclass(slots=True)
class PhaseTiming:
    """Seconds spent in one round: all clients together, the slowest client, and the server."""

    clients_total: float = 0.0
    client_max: float = 0.0
    server: float = 0.0
    clients: int = 0

    @property
    def client_mean(self) -> float:
        """Mean seconds per participating client."""
        return self.clients_total / self.clients if self.clients else 0.0


@dataclass(slots=True)
class SimulationResult:
    """The outcome of :func:`simulate`.

    ``total`` is the sum mod 2^bits of the inputs of ``included`` (0-based client indices).
    ``dropped`` maps each excluded client to (round name, reason). ``timings`` has one entry
    per protocol round that ran; byte counts are protocol payload bytes.
    """

    total: npt.NDArray[np.unsignedinteger]
    included: list[int]
    dropped: dict[int, tuple[str, str]]
    config: RoundConfig
    timings: dict[str, PhaseTiming]
    client_bytes_sent: list[int]
    client_bytes_received: list[int]
    server_bytes_sent: int
    server_bytes_received: int
    decoded: DecodedResult | None = None

    def _decoded(self) -> DecodedResult:
        if self.decoded is None:
            raise ConfigError("this round summed integers; pass clip= to simulate float inputs")
        return self.decoded

    @property
    def sum(self) -> Any:
        """sum(x) of the included inputs (same structure as one input); unweighted float mode."""
        return self._decoded().sum

    @property
    def mean(self) -> Any:
        """sum(x) / number of included clients; unweighted float mode."""
        return self._decoded().mean

    @property
    def weighted_sum(self) -> Any:
        """sum(w x) of the included inputs; needs ``weights=``."""
        return self._decoded().weighted_sum

    @property
    def total_weight(self) -> float:
        """sum(w) of the included clients; needs ``weights=``."""
        return self._decoded().total_weight

    @property
    def weighted_mean(self) -> Any:
        """sum(w x) / sum(w) over the included clients; needs ``weights=``."""
        return self._decoded().weighted_mean

    @property
    def bits(self) -> int:
        """The ring bit width."""
        return self.config.bits

    def plain_total(self, inputs: npt.ArrayLike) -> npt.NDArray[np.unsignedinteger]:
        """The plain sum mod 2^bits of the included inputs, computed directly (for checking)."""
        rows = _as_matrix(inputs, self.config.bits)
        total = np.zeros(self.config.dim, dtype=word_dtype(self.config.bits))
        for i in self.included:
            np.add(total, rows[i], out=total)
        if self.config.bits not in (32, 64):
            total &= total.dtype.type((1 << self.config.bits) - 1)
        return total


def _as_matrix(inputs: npt.ArrayLike, bits: int) -> npt.NDArray[np.unsignedinteger]:
    bits = check_bits(bits)  # a plain int from here: np.int64(63) must not overflow 1 << bits
    try:
        arr = np.asarray(inputs)
    except ValueError:
        raise ConfigError(_ragged_detail(inputs)) from None
    if arr.ndim != 2:
        raise ConfigError(f"inputs must be n vectors of equal length (2-D), got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ConfigError(
            f"inputs must be integers below 2^bits (got dtype {arr.dtype}); encode floats first"
        )
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 1 << bits):
        raise ConfigError(f"input values must lie in 0..2^{bits}-1")
    return arr.astype(word_dtype(bits), copy=False)


def _ragged_detail(inputs: Any) -> str:
    """Name the first client whose vector length differs from client 0's."""
    rows = list(inputs)
    first = len(rows[0]) if rows and hasattr(rows[0], "__len__") else None
    for i, row in enumerate(rows):
        length = len(row) if hasattr(row, "__len__") else None
        if length != first:
            return (
                f"inputs must be n vectors of equal length: client {i} has "
                f"{'no length' if length is None else length} values, client 0 has {first}"
            )
    return "inputs must be n vectors of equal length (2-D) of integers"


def _weight(client: int, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"weights[{client}] must be a number, got {type(value).__name__}")
    return float(value)


def _check_bits_arg(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 1 <= bits <= 64:
        raise ConfigError(f"bits must be an integer in 1..64, got {bits!r}")
    return int(bits)


def _schedule(
    n: int,
    dropout: float | Mapping[int, int | str | Round],
    dropout_round: int | str | Round | None,
    rng: RandomSource,
) -> dict[int, Round]:
    """0-based client -> the first round whose message it never sends."""
    if isinstance(dropout, Mapping):
        schedule = {}
        for client, round_ in dropout.items():
            if isinstance(client, bool) or not isinstance(client, int) or not 0 <= client < n:
                raise ConfigError(
                    f"dropout schedule names client {client!r}; clients are 0..{n - 1}"
                )
            schedule[client] = Round.parse(round_)
        return schedule
    if isinstance(dropout, bool) or not isinstance(dropout, int | float | np.floating):
        raise ConfigError(
            f"dropout must be a fraction in [0, 1] or a {{client: round}} mapping, got {dropout!r}"
        )
    rate = float(dropout)
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"dropout rate must be in [0, 1], got {dropout}")
    count = round(rate * n)
    # Choose `count` clients uniformly (partial Fisher-Yates over CSPRNG draws).
    order = list(range(n))
    for i in range(count):
        j = i + _below(rng, n - i)
        order[i], order[j] = order[j], order[i]
    fixed = None if dropout_round is None else Round.parse(dropout_round)
    return {c: fixed if fixed is not None else Round(_below(rng, 5)) for c in order[:count]}


def _below(rng: RandomSource, bound: int) -> int:
    """Uniform integer in [0, bound) by rejection sampling."""
    limit = (1 << 64) - (1 << 64) % bound
    while True:
        x = int.from_bytes(rng.random_bytes(8), "little")
        if x < limit:
            return x % bound


def _run_round(
    inputs: npt.ArrayLike,
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
    workers: int = 1,
    spec_digest: bytes = RAW_SPEC_DIGEST,
    design_dropout_rate: float | None = None,
    context_digest: bytes | None = None,
) -> SimulationResult:
    """Run one round over ``inputs`` (n vectors of D integers mod 2^bits); see :func:`simulate`.

    ``dropout`` is either a rate (that fraction of clients, chosen at random, drop at
    ``dropout_round`` or at a random round when it is None) or an explicit schedule
    ``{client: round}`` (0-based clients; rounds as numbers 0..4 or names such as
    ``"masked-input"``): the client sends nothing from that round on. ``degree`` and
    ``threshold`` default to the parameter finder's choice for n and the dropout rate.
    ``seed`` makes keys, graph and dropouts reproducible (never use it in production).

    ``progress(round_name, clients)`` is called as each round starts.

    Raises :class:`RoundAbortedError` when too few clients survive; never returns a partial sum.
    """
    rows = _as_matrix(inputs, bits)
    n, dim = rows.shape
    if n < 2:
        raise ConfigError(f"need at least 2 clients, got {n}")
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed)
    schedule = _schedule(n, dropout, dropout_round, rng)
    rate_hint = len(schedule) / n if schedule else 0.0
    # The design dropout rate is at least the 5% default unless given, so a round that injects
    # none still gets parameters that default clients accept; more injected dropout asks for more.
    design = (
        min(max(rate_hint, _DESIGN_DROPOUT_RATE), 0.5)
        if design_dropout_rate is None
        else design_dropout_rate
    )
    create: dict[str, Any] = {
        "threshold": threshold,
        "mode": mode,
        "corrupt_rate": corrupt_rate,
        "allow_unsafe": allow_unsafe,
        "rng": rng,
        "spec_digest": spec_digest,
    }
    if context_digest is not None:
        create["context_digest"] = context_digest
    config = RoundConfig.create(n, dim, bits, degree=degree, dropout_rate=design, **create)
    # The simulated clients judge the config with the simulation's own assumptions. A degree
    # or threshold given explicitly is the caller's choice for every client, so it is accepted
    # even below that floor (the mode's threshold rule still needs allow_unsafe).
    policy = ClientPolicy(
        corrupt_rate=corrupt_rate,
        dropout_rate=design,
        allow_weak_parameters=degree is not None or threshold is not None,
        allow_unsafe=allow_unsafe,
    )
    # Malicious mode: the clients derive the graph by commit-reveal during the round.
    graph = (
        None
        if mode == "malicious"
        else NeighbourGraph(config.graph_seed, range(1, n + 1), config.degree)
    )
    identities = registry = None
    if mode == "malicious":
        from secagg.crypto.signing import SigningKey
        from secagg.protocol.identity import MappingRegistry

        identities = {i: SigningKey.generate(rng) for i in range(1, n + 1)}
        registry = MappingRegistry({i: k.public_bytes for i, k in identities.items()})
    clients = {
        i + 1: ClientSession(
            config,
            i + 1,
            rows[i],
            rng=_client_rng(rng, seed),
            graph=graph,
            identity=None if identities is None else identities[i + 1],
            registry=registry,
            policy=policy,
            # Each client checks the round's spec is the one it encoded with.
            expected_spec_digest=spec_digest,
        )
        for i in range(n)
    }
    pool = None
    if workers > 1:
        from secagg.simulation.parallel import MaskPool

        pool = MaskPool(workers)
    try:
        server = ServerSession(
            config,
            graph=graph,
            registry=registry,
            expand_masks=None if pool is None else pool.add_many,
        )
        return _drive(config, clients, server, schedule, mode, progress)
    except RoundAbortedError as exc:
        found = config.parameters
        if found is None or found.meets_correctness or degree is not None:
            raise
        # The finder knew no parameters reach its correctness target here: say so, with numbers.
        detail = f"{exc.detail}; the finder chose {found.describe()}"
        raise RoundAbortedError(exc.reason, detail) from exc
    finally:
        if pool is not None:
            pool.close()


def _drive(
    config: RoundConfig,
    clients: dict[int, ClientSession],
    server: ServerSession,
    schedule: dict[int, Round],
    mode: Mode,
    progress: Callable[[str, int], None] | None,
) -> SimulationResult:
    """Pass messages between the sessions until the round ends; time and count everything."""
    n = config.num_clients
    stops = {c + 1: r for c, r in schedule.items()}
    sent = dict.fromkeys(clients, 0)
    received = dict.fromkeys(clients, 0)
    timings: dict[str, PhaseTiming] = {}
    server_sent = server_received = 0

    def deliver(round_: Round, replies: dict[int, ClientMessage], timing: PhaseTiming) -> None:
        nonlocal server_received
        start = time.perf_counter()
        for index, reply in replies.items():
            size = message_size(reply)
            sent[index] += size
            server_received += size
            server.receive(reply)
        timing.server += time.perf_counter() - start

    def run_clients(
        round_: Round, outbox: dict[int, ServerMessage], *, final: bool = False
    ) -> dict[int, ClientMessage]:
        # The final delivery (RoundComplete / Abort) is not a protocol round of its own: it
        # is not timed, or every client would be counted twice in the last round.
        timing = PhaseTiming() if final else timings.setdefault(round_.label, PhaseTiming())
        if progress is not None and not final:
            progress(round_.label, len(outbox))
        replies: dict[int, ClientMessage] = {}
        for index, msg in outbox.items():
            client = clients[index]
            received[index] += message_size(msg)
            if client.state.value in ("done", "aborted") or stops.get(index, 99) <= round_:
                continue
            start = time.perf_counter()
            reply = client.receive(msg)
            elapsed = time.perf_counter() - start
            timing.clients_total += elapsed
            timing.client_max = max(timing.client_max, elapsed)
            timing.clients += 1
            if reply is not None:
                replies[index] = reply
        return replies

    # Round 0: clients start on their own.
    timing0 = timings.setdefault(Round.ADVERTISE_KEYS.label, PhaseTiming())
    if progress is not None:
        progress(Round.ADVERTISE_KEYS.label, n)
    first: dict[int, ClientMessage] = {}
    for index, client in clients.items():
        if stops.get(index, 99) <= Round.ADVERTISE_KEYS:
            continue
        start = time.perf_counter()
        first[index] = client.start()
        elapsed = time.perf_counter() - start
        timing0.clients_total += elapsed
        timing0.client_max = max(timing0.client_max, elapsed)
        timing0.clients += 1
    deliver(Round.ADVERTISE_KEYS, first, timing0)
    current = Round.ADVERTISE_KEYS
    while not _finished(server):
        timing = timings.setdefault(current.label, PhaseTiming())
        start = time.perf_counter()
        outbox = server.advance()
        timing.server += time.perf_counter() - start
        server_sent += sum(message_size(m) for m in outbox.values())
        if _finished(server):
            run_clients(Round.UNMASKING, outbox, final=True)  # deliver RoundComplete / Abort
            break
        # The server says which round's replies it now collects (malicious round 0 has a
        # second step, the nonce reveals; semi-honest mode skips the consistency check).
        assert server.collecting is not None
        current = server.collecting
        replies = run_clients(current, outbox)
        deliver(current, replies, timings[current.label])
    result = server.result  # raises RoundAbortedError when the round aborted
    included = [i - 1 for i in result.included]
    dropped = {
        i - 1: (r.label, str(reason))
        for i, (r, reason, _d) in result.dropped.items()
        if i - 1 not in set(included)
    }
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


def _finished(server: ServerSession) -> bool:
    return server.phase in (ServerPhase.DONE, ServerPhase.ABORTED)


def _client_rng(rng: RandomSource, seed: object) -> RandomSource:
    if seed is None:
        return rng
    assert isinstance(rng, DeterministicRandom)
    return rng.fork("client")


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
    ``progress(round_name, clients)`` is called as each round starts. ``workers`` > 1 spreads
    the server's mask removal over that many processes. ``context_digest`` (32 bytes) is bound
    into the round config, hence into every key derivation and signature.
    ``engine="ray"`` hosts the clients in Ray actors (integer mode; options ``batch_size``,
    ``ray_address``; see :mod:`secagg.simulation.ray_engine`).

    Raises :class:`RoundAbortedError` when too few clients survive; never returns a partial sum.
    """
    if engine != "local" or engine_options:  # e.g. "ray": the clients live elsewhere
        arguments = dict(locals())
        from secagg.simulation.ray_engine import dispatch

        return dispatch(arguments)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if bits is not None:
        bits = _check_bits_arg(bits)
    common: dict[str, Any] = {
        "degree": degree,
        "threshold": threshold,
        "dropout": dropout,
        "dropout_round": dropout_round,
        "mode": mode,
        "seed": seed,
        "allow_unsafe": allow_unsafe,
        "corrupt_rate": corrupt_rate,
        "progress": progress,
        "workers": workers,
        "design_dropout_rate": design_dropout_rate,
        "context_digest": context_digest,
    }
    if clip is None:
        if weights is not None or dp is not None or report_clipping:
            raise ConfigError("weights, dp and report_clipping need float mode: pass clip=")
        if bits is None:
            raise ConfigError("bits is required for integer inputs (or pass clip= for floats)")
        return _run_round(inputs, bits=bits, **common)
    try:
        clients = list(inputs)
    except TypeError:
        raise ConfigError(
            f"inputs must be a sequence of per-client arrays or pytrees, got "
            f"{type(inputs).__name__}"
        ) from None
    if len(clients) < 2:
        raise ConfigError(f"need at least 2 clients, got {len(clients)}")
    if weights is not None:
        weights = [_weight(i, w) for i, w in enumerate(weights)]
        if len(weights) != len(clients):
            raise ConfigError(f"got {len(weights)} weights for {len(clients)} clients")
        if max_weight is None:
            max_weight = max(max(weights), 1e-12)
    spec = EncodingSpec(
        clip=clip,
        quant_bits=quant_bits,
        clip_mode=clip_mode,  # type: ignore[arg-type]
        weighted=weights is not None,
        max_weight=max_weight,
        report_clipping=report_clipping,
        dp=dp,
    )
    encoder = Encoder(spec, clients[0], n_clients=len(clients), bits=bits)
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed).fork("enc")
    rows = np.empty((len(clients), encoder.dim), dtype=encoder.dtype)
    for i, tree in enumerate(clients):
        try:
            rows[i] = encoder.encode(tree, weight=None if weights is None else weights[i], rng=rng)
        except EncodingError as exc:
            raise EncodingError(f"client {i}: {exc}") from None
    result = _run_round(rows, bits=encoder.bits, spec_digest=encoder.spec_digest, **common)
    result.decoded = encoder.decode(
        result.total, n_included=len(result.included), spec_digest=result.config.spec_digest
    )
    return result
