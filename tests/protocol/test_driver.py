"""The one round driver: schedules, interception, and the observer's events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Set
from typing import Any

import numpy as np

import secagg
from secagg.protocol.driver import Schedule, run_round
from secagg.protocol.messages import ClientMessage, Round, ServerMessage, message_size
from secagg.protocol.observer import RoundObserver
from tests.protocol.conftest import make_harness

Reply = Callable[[ServerMessage], ClientMessage | None]


class Recorder(RoundObserver):
    """Every event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object, object]] = []

    def round_started(self, round_: Round, recipients: int) -> None:
        self.events.append(("round", round_, recipients))

    def client_begin(self, round_: Round, index: int) -> None:
        self.events.append(("client+", round_, index))

    def client_end(self, round_: Round, index: int) -> None:
        self.events.append(("client-", round_, index))

    def server_begin(self, round_: Round, step: str) -> None:
        self.events.append(("server+", round_, step))

    def server_end(self, round_: Round, step: str) -> None:
        self.events.append(("server-", round_, step))

    def to_server(self, round_: Round, index: int, msg: ClientMessage) -> None:
        self.events.append(("up", index, message_size(msg)))

    def to_client(self, round_: Round, index: int, msg: ServerMessage) -> None:
        self.events.append(("down", index, message_size(msg)))

    def dropped(self, round_: Round, indices: Set[int]) -> None:
        self.events.append(("dropped", round_, frozenset(indices)))

    def of(self, kind: str) -> list[tuple[Any, Any]]:
        return [(a, b) for k, a, b in self.events if k == kind]


def test_begin_and_end_events_pair_up_and_nest() -> None:
    h = make_harness(6, 4, 32, seed=2, stops={2: Round.MASKED_INPUT})
    rec = Recorder()
    run_round(h.server, h.clients, Schedule(h.stops), rec)
    open_: list[tuple[str, object, object]] = []
    for kind, a, b in rec.events:
        if kind.endswith("+"):
            open_.append((kind[:-1], a, b))
        elif kind.endswith("-"):
            assert open_.pop() == (kind[:-1], a, b)
    assert not open_
    # The unmasking's two steps are reported inside the server's advance of that round.
    steps = [b for k, a, b in rec.events if k == "server+" and a is Round.UNMASKING]
    assert steps == ["receive", "advance", "reconstruct", "remove-masks"]


def test_a_stopped_client_gets_nothing_from_its_stop_on_and_is_reported_dropped() -> None:
    h = make_harness(7, 4, 32, seed=3, stops={4: Round.MASKED_INPUT})
    rec = Recorder()
    received: list[tuple[int, str]] = []
    for i, client in h.clients.items():
        original = client.receive

        def spy(msg: ServerMessage, i: int = i, original: Reply = original) -> ClientMessage | None:
            received.append((i, type(msg).__name__))
            return original(msg)

        client.receive = spy  # type: ignore[method-assign]
    run_round(h.server, h.clients, Schedule(h.stops), rec)
    # It took part in round 1 (keys, then its shares delivery), never after.
    assert [name for i, name in received if i == 4] == ["KeysBroadcast"]
    # The server still addressed the round's end to it (counted as sent), dropped in round 2.
    assert (Round.MASKED_INPUT, frozenset({4})) in rec.of("dropped")
    assert {i for i, _size in rec.of("down")} >= {4}
    assert h.server.dropped()[4][0] is Round.MASKED_INPUT
    # Everyone else finished, told they were included.
    assert Counter(name for _i, name in received)["RoundComplete"] == 6


def test_intercept_replaces_or_suppresses_replies() -> None:
    h = make_harness(6, 4, 32, seed=4)
    silenced = 3

    def intercept(round_: Round, index: int, msg: ClientMessage) -> ClientMessage | None:
        return None if (round_, index) == (Round.SHARE_KEYS, silenced) else msg

    run_round(h.server, h.clients, intercept=intercept)
    result = h.server.result
    assert silenced not in result.included
    assert result.dropped[silenced][0] is Round.SHARE_KEYS


def test_simulate_passes_every_event_to_a_callers_observer() -> None:
    rows = np.random.default_rng(0).integers(0, 1 << 16, size=(12, 20), dtype=np.uint32)
    rec = Recorder()
    result = secagg.simulate(
        rows,
        bits=32,
        degree=11,
        threshold=8,
        dropout={0: "share-keys", 5: "unmasking"},
        seed=5,
        observer=rec,
    )
    assert sorted(result.dropped) == [0]
    assert 5 in result.included  # its masked input is in the sum: the result lists it included
    # Bytes: the observer's messages are exactly what the result counts.
    assert sum(size for _i, size in rec.of("up")) == result.server_bytes_received
    assert sum(size for _i, size in rec.of("down")) == result.server_bytes_sent
    # Drops per round, including the late one the result counts as included.
    dropped = {i - 1: r.label for r, group in rec.of("dropped") for i in group}
    assert dropped == {0: "share-keys", 5: "unmasking"}
    assert result.dropped[0].round.label == "share-keys"
    # The rounds the clients handled, in order, as the timings name them.
    rounds = [r.label for r, _n in rec.of("round")]
    assert rounds == list(result.timings)
    assert [t.clients for t in result.timings.values()] == [
        sum(1 for r, _i in rec.of("client+") if r.label == name) for name in result.timings
    ]
