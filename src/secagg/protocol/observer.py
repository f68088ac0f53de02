"""What a round driver reports as a round runs: the hooks an observer overrides.

The protocol core has no clock: an observer that wants timings reads its own clock between a
``*_begin`` and the matching ``*_end``. Every hook is a no-op here, so an observer overrides
only what it needs and :data:`NULL_OBSERVER` costs nothing.
"""

from __future__ import annotations

from collections.abc import Set

from secagg.protocol.messages import ClientMessage, Round, ServerMessage

__all__ = ["NULL_OBSERVER", "Observers", "RoundObserver", "ServerStep"]

# A named piece of server work: "receive", "advance", "reconstruct", "remove-masks".
ServerStep = str


class RoundObserver:
    """Receives the events of one round. Subclass and override the hooks you need."""

    def round_started(self, round_: Round, recipients: int) -> None:
        """The clients are about to handle round ``round_``'s step (``recipients`` of them)."""

    def client_begin(self, round_: Round, index: int) -> None:
        """Client ``index`` starts handling its message of ``round_`` (or its start)."""

    def client_end(self, round_: Round, index: int) -> None:
        """Client ``index`` finished what :meth:`client_begin` announced."""

    def server_begin(self, round_: Round, step: ServerStep) -> None:
        """The server starts ``step`` while collecting ``round_``."""

    def server_end(self, round_: Round, step: ServerStep) -> None:
        """The server finished what :meth:`server_begin` announced."""

    def to_server(self, round_: Round, index: int, msg: ClientMessage) -> None:
        """Client ``index`` sent ``msg`` to the server."""

    def to_client(self, round_: Round, index: int, msg: ServerMessage) -> None:
        """The server sent ``msg`` to client ``index``."""

    def dropped(self, round_: Round, indices: Set[int]) -> None:
        """The server stopped counting ``indices`` when it ended ``round_``'s step."""


NULL_OBSERVER = RoundObserver()


class Observers(RoundObserver):
    """Several observers as one: each event goes to each, in order."""

    def __init__(self, *observers: RoundObserver) -> None:
        self.observers = observers

    def round_started(self, round_: Round, recipients: int) -> None:
        for o in self.observers:
            o.round_started(round_, recipients)

    def client_begin(self, round_: Round, index: int) -> None:
        for o in self.observers:
            o.client_begin(round_, index)

    def client_end(self, round_: Round, index: int) -> None:
        for o in self.observers:
            o.client_end(round_, index)

    def server_begin(self, round_: Round, step: ServerStep) -> None:
        for o in self.observers:
            o.server_begin(round_, step)

    def server_end(self, round_: Round, step: ServerStep) -> None:
        for o in self.observers:
            o.server_end(round_, step)

    def to_server(self, round_: Round, index: int, msg: ClientMessage) -> None:
        for o in self.observers:
            o.to_server(round_, index, msg)

    def to_client(self, round_: Round, index: int, msg: ServerMessage) -> None:
        for o in self.observers:
            o.to_client(round_, index, msg)

    def dropped(self, round_: Round, indices: Set[int]) -> None:
        for o in self.observers:
            o.dropped(round_, indices)
