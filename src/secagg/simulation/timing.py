"""The simulator's observer: seconds per round (clients and server), bytes, drops."""

from __future__ import annotations

import time
from collections.abc import Callable, Set

from secagg.protocol.messages import ClientMessage, Round, ServerMessage, message_size
from secagg.protocol.observer import RoundObserver, ServerStep
from secagg.simulation.result import PhaseTiming

__all__ = ["TimingObserver"]

# The server's own loop steps; the unmasking's sub-steps run inside "advance" and are kept
# apart in ``server_steps`` so they are not counted twice.
_SERVER_LOOP = ("receive", "advance")


class TimingObserver(RoundObserver):
    """Measures a round as :class:`~secagg.protocol.driver.RoundDriver` runs it.

    ``progress(round_name, clients)`` is called as each round starts.
    """

    def __init__(self, n: int, progress: Callable[[str, int], None] | None = None) -> None:
        self.progress = progress
        self.timings: dict[str, PhaseTiming] = {}
        self.server_steps: dict[ServerStep, float] = {}
        self.drops: dict[str, int] = {}
        self.client_sent = dict.fromkeys(range(1, n + 1), 0)
        self.client_received = dict.fromkeys(range(1, n + 1), 0)
        self.server_sent = 0
        self.server_received = 0
        self._client_start = 0.0
        self._server_start: dict[ServerStep, float] = {}

    def _timing(self, round_: Round) -> PhaseTiming:
        return self.timings.setdefault(round_.label, PhaseTiming())

    def round_started(self, round_: Round, recipients: int) -> None:
        self._timing(round_)
        if self.progress is not None:
            self.progress(round_.label, recipients)

    def client_begin(self, round_: Round, index: int) -> None:
        self._client_start = time.perf_counter()

    def client_end(self, round_: Round, index: int) -> None:
        elapsed = time.perf_counter() - self._client_start
        timing = self._timing(round_)
        timing.clients_total += elapsed
        timing.client_max = max(timing.client_max, elapsed)
        timing.clients += 1

    def server_begin(self, round_: Round, step: ServerStep) -> None:
        self._server_start[step] = time.perf_counter()

    def server_end(self, round_: Round, step: ServerStep) -> None:
        elapsed = time.perf_counter() - self._server_start.pop(step)
        self.server_steps[step] = self.server_steps.get(step, 0.0) + elapsed
        if step in _SERVER_LOOP:
            self._timing(round_).server += elapsed

    def to_server(self, round_: Round, index: int, msg: ClientMessage) -> None:
        size = message_size(msg)
        self.client_sent[index] += size
        self.server_received += size

    def to_client(self, round_: Round, index: int, msg: ServerMessage) -> None:
        size = message_size(msg)
        self.client_received[index] += size
        self.server_sent += size

    def dropped(self, round_: Round, indices: Set[int]) -> None:
        self.drops[round_.label] = self.drops.get(round_.label, 0) + len(indices)
