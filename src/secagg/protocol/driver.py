"""The one sans-IO round driver: pass messages between sessions in memory until a round ends.

The simulator and the test harnesses run rounds through it; only the network transport (and
the Flower adapter) have loops of their own, because they wait on real clients. The server
session says which round it collects and when it is finished, so the driver never computes
the next round itself. There is no clock here: an observer that wants timings reads its own
clock between the ``*_begin`` and ``*_end`` events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from secagg.protocol.client.state import ClientState
from secagg.protocol.messages import ClientMessage, Round, ServerMessage
from secagg.protocol.observer import NULL_OBSERVER, RoundObserver
from secagg.protocol.server.session import ServerSession

__all__ = ["Intercept", "RoundClient", "RoundDriver", "Schedule", "run_round"]

Replies = dict[int, ClientMessage]
Outbox = dict[int, ServerMessage]
# May replace a client's reply (or suppress it, by returning None) before the server sees it.
Intercept = Callable[[Round, int, ClientMessage], ClientMessage | None]

_FINISHED = (ClientState.DONE, ClientState.ABORTED)


class RoundClient(Protocol):
    """What the driver needs of a client session."""

    @property
    def state(self) -> ClientState: ...

    def start(self) -> ClientMessage: ...

    def receive(self, msg: ServerMessage) -> ClientMessage | None: ...


@dataclass(frozen=True, slots=True)
class Schedule:
    """Who drops when: client index -> the first round whose message it never sends.

    A stopped client also receives nothing from that round on (it is gone), the final
    RoundComplete or Abort included.
    """

    stops: Mapping[int, Round] = field(default_factory=dict)

    def sends(self, index: int, round_: Round) -> bool:
        """Whether client ``index`` still takes part in ``round_``."""
        stop = self.stops.get(index)
        return stop is None or stop > round_


class RoundDriver:
    """Drives one round step by step; :func:`run_round` runs it to the end.

    Clients missing from ``clients`` (e.g. slots a test plays itself) are skipped. An
    ``observer`` also becomes the server session's, so it hears the server's own steps.
    """

    def __init__(
        self,
        server: ServerSession,
        clients: Mapping[int, RoundClient],
        schedule: Schedule | None = None,
        observer: RoundObserver | None = None,
        *,
        intercept: Intercept | None = None,
    ) -> None:
        self.server = server
        self.clients = clients
        self.schedule = schedule or Schedule()
        self.observer = observer or NULL_OBSERVER
        self.intercept = intercept
        if observer is not None:
            server.observer = observer  # so the server's own steps reach it too

    def start(self, only: Iterable[int] | None = None) -> Replies:
        """Round 0: every (or each given) client that takes part advertises its keys."""
        round_ = Round.ADVERTISE_KEYS
        wanted = self.clients.keys() if only is None else set(only)
        starting = [i for i in self.clients if i in wanted and self.schedule.sends(i, round_)]
        self.observer.round_started(round_, len(self.clients))
        replies: Replies = {}
        for i in starting:
            self.observer.client_begin(round_, i)
            replies[i] = self.clients[i].start()
            self.observer.client_end(round_, i)
        return replies

    def deliver(self, round_: Round, replies: Mapping[int, ClientMessage]) -> None:
        """Hand the clients' replies for ``round_`` to the server."""
        observer = self.observer
        observer.server_begin(round_, "receive")
        for i, reply in replies.items():
            msg = reply if self.intercept is None else self.intercept(round_, i, reply)
            if msg is not None:
                observer.to_server(round_, i, msg)
                self.server.receive(msg)
        observer.server_end(round_, "receive")

    def advance(self) -> Outbox:
        """End the server's current step; returns what it sends."""
        server, observer = self.server, self.observer
        round_ = server.collecting
        if round_ is None:
            return {}
        before = server.active()
        observer.server_begin(round_, "advance")
        outbox = server.advance()
        observer.server_end(round_, "advance")
        for i, msg in outbox.items():
            observer.to_client(round_, i, msg)
        observer.dropped(round_, before - server.active())
        return outbox

    def send(self, round_: Round, outbox: Mapping[int, ServerMessage]) -> Replies:
        """Deliver ``outbox`` to the clients taking part in ``round_``; collect their replies.

        Finished clients and clients the schedule stopped get nothing.
        """
        observer = self.observer
        replies: Replies = {}
        for i, msg in outbox.items():
            client = self.clients.get(i)
            if client is None or client.state in _FINISHED or not self.schedule.sends(i, round_):
                continue
            observer.client_begin(round_, i)
            reply = client.receive(msg)
            observer.client_end(round_, i)
            if reply is not None:
                replies[i] = reply
        return replies

    def step(self, round_: Round, replies: Mapping[int, ClientMessage]) -> tuple[Round, Replies]:
        """Deliver ``round_``'s replies, end the server's step, pass its messages on.

        Returns the round the server collects next and the clients' replies for it; once the
        server is finished, its last messages (RoundComplete or Abort) are delivered, untimed
        (they belong to no round of their own), and no replies come back.
        """
        self.deliver(round_, replies)
        outbox = self.advance()
        following = self.server.collecting
        if following is None:
            self._finish(round_, outbox)
            return round_, {}
        self.observer.round_started(following, len(outbox))
        return following, self.send(following, outbox)

    def run(self, round_: Round, replies: Mapping[int, ClientMessage]) -> None:
        """Step from ``round_``'s replies until the server is finished."""
        while not self.server.finished:
            round_, replies = self.step(round_, replies)

    def _finish(self, round_: Round, outbox: Mapping[int, ServerMessage]) -> None:
        timed, self.observer = self.observer, NULL_OBSERVER
        try:
            self.send(Round.UNMASKING, outbox)
        finally:
            self.observer = timed


def run_round(
    server: ServerSession,
    clients: Mapping[int, RoundClient],
    schedule: Schedule | None = None,
    observer: RoundObserver | None = None,
    *,
    intercept: Intercept | None = None,
) -> None:
    """Run one round from the clients' start until the server is done or aborted.

    Read the outcome from ``server.result`` (it raises if the round aborted).
    """
    driver = RoundDriver(server, clients, schedule, observer, intercept=intercept)
    driver.run(Round.ADVERTISE_KEYS, driver.start())
