"""What every server state shares: the round's context, and the state base class.

A state owns exactly the data its step needs. Every client message is illegal in a state
unless the state names its type in ``accepts`` and implements :meth:`ServerState.accept`;
:meth:`ServerState.end` closes the step and returns the next state and the messages to send.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from secagg.errors import LocalProtocolError, RoundAbortedError
from secagg.graph import NeighbourGraph
from secagg.protocol.config import RoundConfig
from secagg.protocol.identity import IdentityRegistry
from secagg.protocol.messages import (
    Abort,
    AdvertiseKeys,
    ClientMessage,
    ConsistencySignature,
    EncryptedShares,
    MaskedInput,
    RevealNonce,
    Round,
    ServerMessage,
    UnmaskResponse,
)
from secagg.protocol.observer import RoundObserver
from secagg.protocol.server.state import ClientRecord, ServerPhase, ServerView
from secagg.protocol.server.unmask import MaskExpander
from secagg.reasons import AbortReason, DropReason

__all__ = ["Drop", "Outbox", "RoundContext", "ServerState", "Transition"]

Outbox = dict[int, ServerMessage]

_MESSAGE_ROUND: dict[type, Round] = {
    AdvertiseKeys: Round.ADVERTISE_KEYS,
    EncryptedShares: Round.SHARE_KEYS,
    MaskedInput: Round.MASKED_INPUT,
    ConsistencySignature: Round.CONSISTENCY_CHECK,
    UnmaskResponse: Round.UNMASKING,
}


class Drop(Exception):  # noqa: N818 - internal control flow, never escapes the session
    """Raised by a handler: drop the sender with this reason."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class RoundContext:
    """The round's fixed facts and per-client records, shared by its states (no secrets)."""

    def __init__(
        self,
        config: RoundConfig,
        *,
        graph: NeighbourGraph | None,
        registry: IdentityRegistry | None,
        expand_masks: MaskExpander | None,
        observer: RoundObserver,
    ) -> None:
        self.config = config
        self.sid = config.session_id
        self.threshold = config.threshold
        self.graph = graph
        self.graph_seed: bytes | None = None if graph is None else config.graph_seed
        self.registry = registry
        self.expand_masks = expand_masks
        self.observer = observer
        self.clients = {i: ClientRecord(i) for i in range(1, config.num_clients + 1)}
        self.view = ServerView()

    def active(self) -> frozenset[int]:
        """Clients still taking part."""
        return frozenset(i for i, r in self.clients.items() if r.active)

    def drop(self, index: int, reason: DropReason, detail: str, round_: Round) -> None:
        """Stop counting client ``index`` (a no-op for unknown or already dropped clients)."""
        record = self.clients.get(index)
        if record is None or not record.active:
            return
        record.reason = reason
        record.detail = detail
        record.dropped_in = round_

    def dropped(self) -> dict[int, tuple[Round, DropReason, str]]:
        """Every dropped client: the round it was dropped in, the reason and a detail."""
        return {
            i: (r.dropped_in or Round.ADVERTISE_KEYS, r.reason, r.detail)
            for i, r in self.clients.items()
            if r.reason is not None
        }

    def with_round(self, round_: Round) -> frozenset[int]:
        """Active clients whose message for ``round_`` was accepted."""
        return frozenset(i for i, r in self.clients.items() if r.active and r.completed >= round_)

    def neighbourhood(self) -> NeighbourGraph:
        """The round's graph; a state asks for it only once it exists."""
        if self.graph is None:
            raise LocalProtocolError("the graph of this round is not derived yet")
        return self.graph

    def closed(self, u: int, among: Iterable[int]) -> frozenset[int]:
        """u's closed neighbourhood (itself and its neighbours) restricted to ``among``."""
        # No copy of a set: settle() asks this for every member, and copying the group each
        # time made settling O(n^2) (hours at n = 100,000).
        pool = among if isinstance(among, set | frozenset) else frozenset(among)
        return frozenset(v for v in (u, *self.neighbourhood().neighbours(u)) if v in pool)

    def settle(self, group: frozenset[int], what: str, round_: Round) -> frozenset[int]:
        """Drop members with fewer than t of their closed neighbourhood in the group, repeatedly.

        Such a client could not go on (it would abort), and counting it would let the next
        phase hand out sets it cannot use.
        """
        t = self.threshold
        members = set(group)
        changed = True
        while changed:
            changed = False
            for u in sorted(members):
                if len(self.closed(u, members)) < t:
                    members.discard(u)
                    self.drop(
                        u, DropReason.NOT_SELECTED, f"fewer than {t} neighbours {what}", round_
                    )
                    changed = True
        self.require_at_least(len(members), what)
        return frozenset(members)

    def require_at_least(self, count: int, what: str) -> None:
        """Abort the round (raise) when fewer than t clients are left for the next step."""
        if count < self.threshold:
            raise RoundAbortedError(
                AbortReason.TOO_FEW_CLIENTS.value,
                f"only {count} {what}; threshold is {self.threshold}",
            )


Transition = tuple["ServerState", Outbox]


class ServerState:
    """One step of the server's round. Subclasses own their step's data."""

    phase: ClassVar[ServerPhase]
    collecting: ClassVar[Round | None] = None  # the round whose client messages it takes
    accepts: ClassVar[type | None] = None  # the one message type it takes (None: none)

    def __init__(self, ctx: RoundContext) -> None:
        self.ctx = ctx

    @property
    def finished(self) -> bool:
        """A terminal state: it takes no message and has no step to end."""
        return self.collecting is None

    def expected(self) -> frozenset[int]:
        """Active clients whose message for this step has not arrived yet."""
        if self.collecting is None:
            return frozenset()
        round_ = self.collecting
        return frozenset(
            i for i, r in self.ctx.clients.items() if r.active and r.completed < round_
        )

    def receive(self, record: ClientRecord, msg: ClientMessage) -> ServerState:
        """Take one message from an active client; raise :class:`Drop` to drop it."""
        if isinstance(msg, Abort):
            raise Drop(DropReason.CLIENT_ABORTED, f"client aborted: {msg.reason}")
        if msg.session_id != self.ctx.sid:
            raise Drop(DropReason.WRONG_SESSION, "message carries another session id")
        if isinstance(msg, RevealNonce):
            return self.reveal(record, msg)
        msg_round = _MESSAGE_ROUND.get(type(msg))
        if msg_round is None:
            raise Drop(DropReason.MALFORMED, f"unknown message type {type(msg).__name__}")
        if self.accepts is not type(msg) or record.completed >= msg_round:
            raise self._illegal(record, msg_round)
        following = self.accept(msg)
        record.completed = msg_round
        return following

    def accept(self, msg: ClientMessage) -> ServerState:
        """Validate and keep the one message type this state takes (after the common checks)."""
        raise LocalProtocolError(f"{type(self).__name__} takes no client message")

    def reveal(self, record: ClientRecord, msg: RevealNonce) -> ServerState:
        """A nonce reveal: legal only while collecting them."""
        if record.revealed:
            raise Drop(DropReason.DUPLICATE, "second nonce reveal")
        raise Drop(DropReason.WRONG_ROUND, f"nonce reveal during {self.phase.value}")

    def end(self) -> Transition:
        """Close this step: the next state and the messages to send.

        Raises :class:`RoundAbortedError` when the round cannot go on.
        """
        raise LocalProtocolError(f"the round is {self.phase.value}; nothing to advance")

    def _illegal(self, record: ClientRecord, msg_round: Round) -> Drop:
        current = self.collecting
        if record.completed >= msg_round:
            which = "second" if msg_round == current else "repeated"
            return Drop(DropReason.DUPLICATE, f"{which} message for round {msg_round.label}")
        during = "the end of the round" if current is None else f"round {current.label}"
        return Drop(DropReason.WRONG_ROUND, f"message for round {msg_round.label} during {during}")
