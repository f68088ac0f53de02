"""The base of every client round state, and the two terminal states.

A state owns exactly the data its next step needs. :meth:`State.step` takes one server
message and returns ``(next_state, reply)``; every message is illegal unless a state class
accepts it, and a refusal is a :class:`~secagg.protocol.client.context.StepAborted`. States
are immutable: the session facade swaps in the next one only when a step succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from secagg.protocol.client.context import RoundGraph, StepAborted
from secagg.protocol.client.state import ClientState
from secagg.protocol.messages import ClientMessage, ServerMessage
from secagg.reasons import AbortReason

__all__ = ["Aborted", "Done", "Graphed", "State", "Step"]


class State:
    """One round state of a client. ``public`` is its name in :class:`ClientState`."""

    __slots__ = ()
    public: ClassVar[ClientState]
    # False: the caller may not hand this state server messages (before start, after the end).
    listening: ClassVar[bool] = True

    @property
    def view(self) -> RoundGraph | None:
        """This client's view of the graph, once known (public information)."""
        return None

    def step(self, msg: ServerMessage) -> Step:
        """Handle ``msg``; the default refuses it (every message is illegal by default)."""
        raise self.unexpected(msg)

    def unexpected(self, msg: ServerMessage) -> StepAborted:
        return StepAborted(
            AbortReason.UNEXPECTED_MESSAGE,
            f"{type(msg).__name__} is not expected in state {self.public.value}",
        )


Step = tuple[State, ClientMessage | None]


class Graphed(State):
    """A state that knows the round's graph (every state but the malicious-mode ones before
    the reveals)."""

    __slots__ = ()
    graph: RoundGraph | None  # a field of each subclass

    @property
    def view(self) -> RoundGraph | None:
        return self.graph


@dataclass(frozen=True, slots=True, eq=False)
class Done(Graphed):
    """The server said which inputs are in the sum. Holds no secret."""

    public: ClassVar[ClientState] = ClientState.DONE
    listening: ClassVar[bool] = False
    graph: RoundGraph | None
    included: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Aborted(Graphed):
    """This client left the round; ``reason`` says why. Holds no secret."""

    public: ClassVar[ClientState] = ClientState.ABORTED
    listening: ClassVar[bool] = False
    graph: RoundGraph | None
    reason: AbortReason
    detail: str
