"""Helpers to drive real client and server sessions through an in-memory round."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.graph import NeighbourGraph
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import RoundConfig
from secagg.protocol.driver import Intercept, RoundDriver, Schedule
from secagg.protocol.messages import ClientMessage, Round, ServerMessage
from secagg.protocol.observer import RoundObserver
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession

# A hook may replace (or suppress, by returning None) a client's reply before the server sees it.
ReplyHook = Intercept
AfterDeliver = Callable[[Round, dict[int, ClientMessage]], None]


class _Log(RoundObserver):
    """Records every message the server sends, with the round it was collecting."""

    def __init__(self, log: list[tuple[Round, int, ServerMessage]]) -> None:
        self.log = log

    def to_client(self, round_: Round, index: int, msg: ServerMessage) -> None:
        self.log.append((round_, index, msg))


@dataclass
class Harness:
    """One round: config, sessions, and the inputs, driven by the library's round driver."""

    config: RoundConfig
    inputs: npt.NDArray[np.uint64]
    clients: dict[int, ClientSession]
    server: ServerSession
    stops: dict[int, Round] = field(default_factory=dict)
    hook: ReplyHook | None = None
    log: list[tuple[Round, int, ServerMessage]] = field(default_factory=list)

    # Called after each round's replies reached the server (e.g. to send one again).
    after_deliver: AfterDeliver | None = None

    def run(self) -> None:
        """Drive the round to its end (DONE or ABORTED)."""
        driver = _Driver(self, Schedule(self.stops), _Log(self.log))
        driver.run(Round.ADVERTISE_KEYS, driver.start())

    def plain_sum(self, included: list[int] | tuple[int, ...]) -> npt.NDArray[np.uint64]:
        total = sum((self.inputs[i - 1].astype(object) for i in included), start=0)
        return np.array(
            [int(v) % (1 << self.config.bits) for v in np.atleast_1d(total)], dtype=np.uint64
        )


class _Driver(RoundDriver):
    def __init__(self, h: Harness, schedule: Schedule, observer: RoundObserver) -> None:
        super().__init__(h.server, h.clients, schedule, observer, intercept=h.hook)
        self.harness = h

    def deliver(self, round_: Round, replies: Mapping[int, ClientMessage]) -> None:
        super().deliver(round_, replies)
        if self.harness.after_deliver is not None:
            self.harness.after_deliver(round_, dict(replies))


def make_harness(
    n: int,
    dim: int,
    bits: int,
    *,
    degree: int | None = None,
    threshold: int | None = None,
    seed: int = 0,
    stops: Mapping[int, Round] | None = None,
    allow_unsafe: bool = False,
) -> Harness:
    rng = DeterministicRandom(seed)
    config = RoundConfig.create(
        n,
        dim,
        bits,
        degree=degree if degree is not None else n - 1,
        threshold=threshold,
        allow_unsafe=allow_unsafe,
        rng=rng,
    )
    gen = np.random.default_rng(seed)  # test inputs only
    inputs = gen.integers(0, 1 << min(bits, 63), size=(n, dim), dtype=np.uint64)
    if bits == 64:
        inputs |= gen.integers(0, 2, size=(n, dim), dtype=np.uint64) << np.uint64(63)
    graph = NeighbourGraph(config.graph_seed, range(1, n + 1), config.degree)
    # Harness rounds are small with the rule's smallest t: weak by a client's default floor
    # (ClientPolicy), deliberately, so the protocol tests can run tiny rounds.
    policy = ClientPolicy(allow_weak_parameters=True, allow_unsafe=allow_unsafe)
    clients = {
        i: ClientSession(
            config, i, inputs[i - 1], rng=rng.fork(f"c{i}"), graph=graph, policy=policy
        )
        for i in range(1, n + 1)
    }
    server = ServerSession(config, graph=graph)
    return Harness(config, inputs, clients, server, dict(stops or {}))


@pytest.fixture
def harness_factory() -> Callable[..., Harness]:
    return make_harness
