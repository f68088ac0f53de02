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
from secagg.protocol.messages import ClientMessage, Round, ServerMessage
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase

# A hook may replace (or suppress, by returning None) a client's reply before the server sees it.
ReplyHook = Callable[[Round, int, ClientMessage], ClientMessage | None]


@dataclass
class Harness:
    """One round: config, sessions, and the inputs, driven step by step."""

    config: RoundConfig
    inputs: npt.NDArray[np.uint64]
    clients: dict[int, ClientSession]
    server: ServerSession
    stops: dict[int, Round] = field(default_factory=dict)
    hook: ReplyHook | None = None
    log: list[tuple[Round, int, ServerMessage]] = field(default_factory=list)

    def run(self) -> None:
        """Drive the round to its end (DONE or ABORTED)."""
        first = {}
        for i, c in self.clients.items():
            if self.stops.get(i, 99) > Round.ADVERTISE_KEYS:
                first[i] = c.start()
        self._deliver(Round.ADVERTISE_KEYS, first)
        current = Round.ADVERTISE_KEYS
        while self.server.phase not in (ServerPhase.DONE, ServerPhase.ABORTED):
            outbox = self.server.advance()
            if self.server.phase in (ServerPhase.DONE, ServerPhase.ABORTED):
                self._to_clients(Round.UNMASKING, outbox, final=True)
                return
            assert self.server.collecting is not None
            current = self.server.collecting
            self._deliver(current, self._to_clients(current, outbox))

    def _to_clients(
        self, round_: Round, outbox: Mapping[int, ServerMessage], final: bool = False
    ) -> dict[int, ClientMessage]:
        replies = {}
        for i, msg in outbox.items():
            self.log.append((round_, i, msg))
            client = self.clients[i]
            if client.state.value in ("done", "aborted"):
                continue
            if not final and self.stops.get(i, 99) <= round_:
                continue
            reply = client.receive(msg)
            if reply is not None:
                replies[i] = reply
        return replies

    def _deliver(self, round_: Round, replies: Mapping[int, ClientMessage]) -> None:
        for i, reply in replies.items():
            out = self.hook(round_, i, reply) if self.hook else reply
            if out is not None:
                self.server.receive(out)

    def plain_sum(self, included: list[int] | tuple[int, ...]) -> npt.NDArray[np.uint64]:
        total = sum((self.inputs[i - 1].astype(object) for i in included), start=0)
        return np.array(
            [int(v) % (1 << self.config.bits) for v in np.atleast_1d(total)], dtype=np.uint64
        )


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
