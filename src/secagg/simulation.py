"""Run a whole round in one process: many ClientSessions and a ServerSession, with dropouts.

This is the researcher's entry point (``secagg.simulate``) and what ``secagg simulate`` runs:
real cryptography and real messages, only the network replaced by direct calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.crypto.prg import word_dtype
from secagg.errors import ConfigError
from secagg.graph import NeighbourGraph
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import Mode, RoundConfig
from secagg.protocol.messages import (
    ClientMessage,
    Round,
    ServerMessage,
    message_size,
)
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase

__all__ = ["PhaseTiming", "SimulationResult", "parse_dropout_round", "simulate"]

_ROUND_NAMES = {r.name.lower().replace("_", "-"): r for r in Round}


def parse_dropout_round(value: int | str | Round) -> Round:
    """A round given as a number (0..4), a name ('masked-input') or a Round."""
    if isinstance(value, Round):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("_", "-")
        if key in _ROUND_NAMES:
            return _ROUND_NAMES[key]
        if not key.isdigit():
            raise ConfigError(f"unknown round {value!r}; expected one of {sorted(_ROUND_NAMES)}")
        value = int(key)
    if isinstance(value, bool) or not isinstance(value, int) or value not in range(5):
        raise ConfigError(f"round must be 0..4 or one of {sorted(_ROUND_NAMES)}, got {value!r}")
    return Round(value)


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
    extras: dict[str, object] = field(default_factory=dict)

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
    arr = np.asarray(inputs)
    if arr.ndim != 2:
        raise ConfigError(f"inputs must be n vectors of equal length (2-D), got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ConfigError(
            f"inputs must be integers below 2^bits (got dtype {arr.dtype}); encode floats first"
        )
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 1 << bits):
        raise ConfigError(f"input values must lie in 0..2^{bits}-1")
    return arr.astype(word_dtype(bits), copy=False)


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
            schedule[client] = parse_dropout_round(round_)
        return schedule
    rate = float(dropout)
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"dropout rate must be in [0, 1], got {dropout}")
    count = round(rate * n)
    # Choose `count` clients uniformly (partial Fisher-Yates over CSPRNG draws).
    order = list(range(n))
    for i in range(count):
        j = i + _below(rng, n - i)
        order[i], order[j] = order[j], order[i]
    fixed = None if dropout_round is None else parse_dropout_round(dropout_round)
    return {c: fixed if fixed is not None else Round(_below(rng, 5)) for c in order[:count]}


def _below(rng: RandomSource, bound: int) -> int:
    """Uniform integer in [0, bound) by rejection sampling."""
    limit = (1 << 64) - (1 << 64) % bound
    while True:
        x = int.from_bytes(rng.random_bytes(8), "little")
        if x < limit:
            return x % bound


def simulate(
    inputs: npt.ArrayLike | Sequence[npt.ArrayLike],
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
) -> SimulationResult:
    """Run one secure-aggregation round over ``inputs`` (n vectors of D integers mod 2^bits).

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
    config = RoundConfig.create(
        n,
        dim,
        bits,
        degree=degree,
        threshold=threshold,
        mode=mode,
        dropout_rate=min(max(rate_hint, 0.01), 0.5),
        corrupt_rate=corrupt_rate,
        allow_unsafe=allow_unsafe,
        rng=rng,
    )
    graph = NeighbourGraph(config.graph_seed, range(1, n + 1), config.degree)
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
        )
        for i in range(n)
    }
    server = ServerSession(config, graph=graph, registry=registry)
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

    def run_clients(round_: Round, outbox: dict[int, ServerMessage]) -> dict[int, ClientMessage]:
        timing = timings.setdefault(_round_name(round_), PhaseTiming())
        if progress is not None:
            progress(_round_name(round_), len(outbox))
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
    timing0 = timings.setdefault(_round_name(Round.ADVERTISE_KEYS), PhaseTiming())
    if progress is not None:
        progress(_round_name(Round.ADVERTISE_KEYS), n)
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
    while server.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
        timing = timings.setdefault(_round_name(current), PhaseTiming())
        start = time.perf_counter()
        outbox = server.advance()
        timing.server += time.perf_counter() - start
        server_sent += sum(message_size(m) for m in outbox.values())
        if server.phase in (ServerPhase.DONE, ServerPhase.ABORTED):
            run_clients(Round.UNMASKING, outbox)  # deliver RoundComplete / Abort
            break
        current = Round(current + 1)
        if current == Round.CONSISTENCY_CHECK and mode != "malicious":
            current = Round.UNMASKING
        replies = run_clients(current, outbox)
        deliver(current, replies, timings[_round_name(current)])
    result = server.result  # raises RoundAbortedError when the round aborted
    included = [i - 1 for i in result.included]
    dropped = {
        i - 1: (_round_name(r), str(reason))
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


def _round_name(round_: Round) -> str:
    return round_.name.lower().replace("_", "-")


def _client_rng(rng: RandomSource, seed: object) -> RandomSource:
    if seed is None:
        return rng
    assert isinstance(rng, DeterministicRandom)
    return rng.fork("client")
