"""The server side of a round as a sans-IO state machine.

The caller feeds every client message to :meth:`ServerSession.receive` (which never raises on
bad input: it drops the sender with a reason), reports vanished clients with :meth:`drop`, and
decides when a phase's waiting ends (all of :meth:`expected` arrived, or a deadline passed) by
calling :meth:`advance`, which returns the messages to send. Masked inputs are added into one
running sum as they arrive, so memory is O(D) whatever the number of clients.

The session is a facade over one state object per step (``r0_keys`` .. ``r4_unmask``,
``terminal``): each owns its step's data, takes only its own message type, and returns the
state that follows; the facade swaps states only when a step succeeded.
"""

from __future__ import annotations

from secagg.errors import ConfigError, LocalProtocolError, MalformedMessageError, RoundAbortedError
from secagg.graph import NeighbourGraph
from secagg.protocol.config import RoundConfig
from secagg.protocol.derive import round_graph
from secagg.protocol.identity import IdentityRegistry
from secagg.protocol.messages import (
    SERVER_SENDER,
    Abort,
    ClientMessage,
    Round,
    RoundComplete,
    ServerMessage,
    checked_client_message,
)
from secagg.protocol.observer import NULL_OBSERVER, RoundObserver
from secagg.protocol.server.base import Drop, Outbox, RoundContext, ServerState
from secagg.protocol.server.r0_keys import CollectKeys, CollectSignedKeys
from secagg.protocol.server.state import AggregationResult, ClientRecord, ServerPhase, ServerView
from secagg.protocol.server.terminal import Aborted, Done
from secagg.protocol.server.unmask import MaskExpander
from secagg.reasons import AbortReason, DropReason

__all__ = ["AggregationResult", "ServerSession", "ServerView"]


class ServerSession:
    """The aggregation server's part in one round.

    In malicious mode round 0 has two steps: keys with seed commitments, then (after the
    server sent every client the list of commitments) the nonces; the graph exists only then.
    ``observer`` hears when the unmasking's two costly steps begin and end.
    """

    def __init__(
        self,
        config: RoundConfig,
        *,
        graph: NeighbourGraph | None = None,
        registry: IdentityRegistry | None = None,
        expand_masks: MaskExpander | None = None,
        observer: RoundObserver | None = None,
    ) -> None:
        malicious = config.mode == "malicious"
        if malicious and registry is None:
            raise ConfigError("malicious mode needs the identity registry")
        if malicious and graph is not None:
            raise ConfigError(
                "a malicious-mode graph is derived from the clients' nonces; do not pass graph="
            )
        if not malicious and graph is None:
            graph = round_graph(config.graph_seed, config.num_clients, config.degree)
        self.config = config
        self._ctx = RoundContext(
            config,
            graph=graph,
            registry=registry,
            expand_masks=expand_masks,
            observer=observer or NULL_OBSERVER,
        )
        # Which class starts the round is the one place the mode is read: each state names
        # the class that follows it.
        self._state: ServerState = (CollectSignedKeys if malicious else CollectKeys)(self._ctx)
        self.rejected = 0  # messages from unknown senders, ignored

    # -- what the caller reads ----------------------------------------------------------------

    @property
    def phase(self) -> ServerPhase:
        """The current step."""
        return self._state.phase

    @property
    def collecting(self) -> Round | None:
        """The round whose client messages the server is collecting now (None once over)."""
        return self._state.collecting

    @property
    def finished(self) -> bool:
        """True once the round is done or aborted."""
        return self._state.finished

    @property
    def clients(self) -> dict[int, ClientRecord]:
        """Every client's record (index -> what the server knows of it)."""
        return self._ctx.clients

    @property
    def view(self) -> ServerView:
        """Which holders revealed shares of whom (for privacy audits)."""
        return self._ctx.view

    @property
    def graph(self) -> NeighbourGraph:
        """The round's neighbour graph (malicious mode: once the nonces are revealed)."""
        return self._ctx.neighbourhood()

    @property
    def graph_seed(self) -> bytes | None:
        """The seed the graph was built from; None until derived (malicious mode)."""
        return self._ctx.graph_seed

    @property
    def observer(self) -> RoundObserver:
        """Hears when the unmasking's reconstruction and mask removal begin and end."""
        return self._ctx.observer

    @observer.setter
    def observer(self, observer: RoundObserver) -> None:
        self._ctx.observer = observer

    @property
    def registry(self) -> IdentityRegistry | None:
        """The identity registry signatures are checked against (malicious mode)."""
        return self._ctx.registry

    @property
    def abort_reason(self) -> AbortReason | None:
        """Why the round aborted (None unless it did)."""
        return self._state.reason if isinstance(self._state, Aborted) else None

    @property
    def abort_detail(self) -> str:
        """What made the round abort ("" unless it did)."""
        return self._state.detail if isinstance(self._state, Aborted) else ""

    def active(self) -> frozenset[int]:
        """Clients still taking part."""
        return self._ctx.active()

    def expected(self) -> frozenset[int]:
        """Active clients whose message for the current phase has not arrived yet."""
        return self._state.expected()

    @property
    def result(self) -> AggregationResult:
        """The round's result; raises :class:`RoundAbortedError` if it aborted."""
        state = self._state
        if isinstance(state, Aborted):
            raise RoundAbortedError(str(state.reason), state.detail)
        if not isinstance(state, Done):
            raise LocalProtocolError(f"no result yet: the round is {state.phase.value}")
        return state.result

    def dropped(self) -> dict[int, tuple[Round, DropReason, str]]:
        """Every dropped client: the round it was dropped in, the reason and a detail."""
        return self._ctx.dropped()

    # -- what the caller does -----------------------------------------------------------------

    def receive(self, msg: ClientMessage) -> None:
        """Take one client message. Misbehaviour drops the sender; nothing is raised."""
        sender = getattr(msg, "sender", None)
        clients = self._ctx.clients
        if isinstance(sender, bool) or not isinstance(sender, int) or sender not in clients:
            self.rejected += 1
            return
        record = clients[sender]
        if not record.active or self._state.finished:
            return
        try:
            self._state = self._state.receive(record, checked_client_message(msg))
        except Drop as exc:
            self.drop(sender, exc.reason, exc.detail)
        except MalformedMessageError as exc:
            self.drop(sender, DropReason.MALFORMED, f"malformed message: {exc}")

    def drop(self, index: int, reason: DropReason, detail: str = "") -> None:
        """Stop counting client ``index`` (it vanished, timed out or misbehaved)."""
        round_ = self._state.collecting
        # Round.ADVERTISE_KEYS is 0, hence falsy: test for None, never use `or` here.
        self._ctx.drop(index, reason, detail, Round.UNMASKING if round_ is None else round_)

    def advance(self) -> dict[int, ServerMessage]:
        """End the current phase: returns the messages to send, keyed by client index.

        When too few clients remain the round aborts: every active client gets an
        :class:`Abort` and :attr:`result` raises :class:`RoundAbortedError`.
        """
        state = self._state
        round_ = state.collecting
        if round_ is None:
            raise LocalProtocolError(f"the round is {state.phase.value}; nothing to advance")
        before = self.active()
        for i in state.expected():
            self.drop(i, DropReason.NO_RESPONSE, f"no message for round {round_.label}")
        try:
            following, outbox = state.end()
        except RoundAbortedError as exc:
            following, outbox = self._aborted(AbortReason(exc.reason), exc.detail)
        self._state = following
        self._tell_dropped(before, outbox)
        return outbox

    def _aborted(self, reason: AbortReason, detail: str) -> tuple[ServerState, Outbox]:
        notice = Abort(self._ctx.sid, SERVER_SENDER, reason.value, detail)
        return Aborted(self._ctx, reason, detail), dict.fromkeys(sorted(self.active()), notice)

    def _tell_dropped(self, before: frozenset[int], outbox: Outbox) -> None:
        """Tell the clients dropped just now, so none waits for a message that never comes.

        One whose input is in a finished sum is told so, whatever happened to it afterwards.
        """
        state = self._state
        included = frozenset(state.result.included) if isinstance(state, Done) else frozenset()
        for i in sorted(before - self.active() - set(outbox)):
            if i in included:
                assert isinstance(state, Done)
                outbox[i] = RoundComplete(self._ctx.sid, state.result.included)
                continue
            record = self._ctx.clients[i]
            outbox[i] = Abort(self._ctx.sid, SERVER_SENDER, str(record.reason), record.detail)
