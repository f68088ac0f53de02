"""The client side of a round as a sans-IO state machine: the facade over the round states.

``start()`` returns the first message; ``receive(msg)`` takes each server message and returns
the reply (or None). Bad or inconsistent server input never raises: the session moves to
ABORTED, remembers why, and returns an :class:`Abort` to send. Using the session wrongly (a call
illegal in its state) raises :class:`LocalProtocolError`. Each state is an object of
:mod:`secagg.protocol.client.states` owning exactly what its next step needs; the facade swaps
in the next one only when a step succeeds. :meth:`ClientSession.save` and
:meth:`ClientSession.restore` carry a session across processes between any two messages.
"""

from __future__ import annotations

import numpy.typing as npt

from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigError, LocalProtocolError
from secagg.graph import NeighbourGraph
from secagg.protocol.client import saved
from secagg.protocol.client.context import (
    PEER_FAULTS,
    ClientContext,
    RoundGraph,
    StepAborted,
    as_ring_vector,
)
from secagg.protocol.client.state import ClientState
from secagg.protocol.client.states import Aborted, Done, New, NewSigned, State
from secagg.protocol.config import RoundConfig
from secagg.protocol.derive import round_graph
from secagg.protocol.identity import IdentityRegistry
from secagg.protocol.messages import Abort, AdvertiseKeys, ClientMessage, ServerMessage
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason

__all__ = ["ClientSession"]


class ClientSession:
    """One client's part in one round.

    ``data`` is the client's vector: ``dim`` non-negative integers below 2^bits. ``graph`` may be
    passed to share one precomputed neighbour graph between many sessions of the same round.
    Malicious mode needs ``identity`` (this client's signing key) and ``registry``; the client
    then also requires ``expected_context_digest``, the digest it computed itself of what the
    server gave it, to equal the config's. In malicious mode the graph is not known up front:
    the clients derive its seed by commit-reveal (a commitment with the keys, the nonce after
    the server fixed the list of commitments), so ``graph`` must not be passed;
    :attr:`graph_seed` holds the seed this client derived (None until then).

    ``policy`` is this client's own floor on n, k and t (default :class:`ClientPolicy()`:
    5% corrupt, 5% dropping, 2^-40); :meth:`start` aborts with ``unsafe-parameters`` when the
    config is below it, before any key is made or anything is revealed.

    ``expected_spec_digest`` (any mode) is the digest of the spec this client encoded ``data``
    with (:mod:`secagg.encoding.round_spec`); a round announcing another spec is refused with
    ``spec-mismatch`` before anything is sent.
    """

    def __init__(
        self,
        config: RoundConfig,
        index: int,
        data: npt.ArrayLike,
        *,
        rng: RandomSource | None = None,
        graph: NeighbourGraph | None = None,
        identity: SigningKey | None = None,
        registry: IdentityRegistry | None = None,
        expected_context_digest: bytes | None = None,
        policy: ClientPolicy | None = None,
        expected_spec_digest: bytes | None = None,
    ) -> None:
        if not 1 <= index <= config.num_clients:
            raise ConfigError(f"client index must be in 1..{config.num_clients}, got {index}")
        malicious = config.mode == "malicious"
        if malicious and (identity is None or registry is None):
            raise ConfigError("malicious mode needs an identity key and an identity registry")
        if not malicious and (identity is not None or registry is not None):
            # A client that holds an identity expects signatures and the consistency round; a
            # config that says otherwise comes from a server trying to switch them off.
            raise ConfigError(
                f"this client has an identity but the round config's mode is {config.mode!r}: "
                "refusing to run without malicious-mode checks"
            )
        if malicious and graph is not None:
            raise ConfigError(
                "a malicious-mode graph is derived from the clients' nonces; do not pass graph="
            )
        ctx = ClientContext(
            config,
            index,
            config.session_id,
            rng or default_random(),
            identity,
            registry,
            # What this client signs is its own view of the context, never the server's claim.
            config.context_digest if expected_context_digest is None else expected_context_digest,
        )
        vector = as_ring_vector(data, config)
        policy = ClientPolicy() if policy is None else policy
        self.config = config
        self.index = index
        self._sid = ctx.sid
        self._step = 0
        self._state: State
        if malicious:
            self._state = NewSigned(ctx, vector, policy, expected_spec_digest)
        else:
            seen = graph or round_graph(config.graph_seed, config.num_clients, config.degree)
            view = RoundGraph(config.graph_seed, frozenset(seen.neighbours(index)))
            self._state = New(ctx, vector, policy, expected_spec_digest, view)

    # -- the round --------------------------------------------------------------------------

    def start(self) -> AdvertiseKeys | Abort:
        """Round 0: make the round's key pairs and advertise the public halves.

        Returns an :class:`Abort` instead when the config's n, k and t are below this client's
        policy (``unsafe-parameters``), or when this client's own context digest differs from
        the one in the config (the server handed it something other than what it announced).
        """
        state = self._state
        if not isinstance(state, New | NewSigned):
            raise LocalProtocolError(f"cannot start in state {state.public.value}")
        try:
            following, advert = state.start()
        except StepAborted as exc:
            return self._enter_abort(exc.reason, exc.detail)
        self._advance(following)
        return advert

    def receive(self, msg: ServerMessage) -> ClientMessage | None:
        """Handle one server message; returns the reply to send, if any."""
        state = self._state
        if not state.listening and not (state.public is ClientState.NEW and isinstance(msg, Abort)):
            raise LocalProtocolError(f"client session is {state.public.value}; cannot receive")
        try:
            if msg.session_id != self._sid:
                raise StepAborted(AbortReason.WRONG_SESSION, "message is for another session")
            if isinstance(msg, Abort):
                self._enter_abort(
                    AbortReason.SERVER_ABORTED, f"server aborted ({msg.reason}): {msg.detail}"
                )
                return None
            following, reply = state.step(msg)
        except StepAborted as exc:
            return self._enter_abort(exc.reason, exc.detail, exc.view)
        except PEER_FAULTS as exc:
            # Fields of the wrong type or shape from the server: abort, never raise.
            return self._enter_abort(
                AbortReason.MALFORMED, f"malformed server message ({type(exc).__name__})"
            )
        self._advance(following)
        return reply

    # -- save / restore ---------------------------------------------------------------------

    def save(self) -> bytes:
        """This session as versioned bytes, to :meth:`restore` after the process is gone.

        The bytes of a live session hold the round's secrets (private keys, self-mask seed,
        shares): store them like a private key. A DONE or ABORTED session's bytes hold none.
        Keep only the newest bytes (:attr:`step` orders them): restoring an older snapshot
        after newer messages were answered could make this client answer a step twice, e.g.
        an unmask request with two different survivor sets, revealing both shares of a
        neighbour. The long-term identity, registry, policy and random source are not saved.
        """
        return saved.dump(self._step, self.config, self.index, self._state)

    @classmethod
    def restore(
        cls,
        blob: bytes,
        *,
        identity: SigningKey | None = None,
        registry: IdentityRegistry | None = None,
        policy: ClientPolicy | None = None,
        rng: RandomSource | None = None,
        graph: NeighbourGraph | None = None,
    ) -> ClientSession:
        """The session :meth:`save` gave ``blob`` for, continuing where it stopped.

        Pass the same ``identity`` and ``registry`` (malicious mode) and ``policy`` as to the
        constructor; ``rng`` defaults to the OS CSPRNG; ``graph``, if given, must be the saved
        round's graph. Raises :class:`~secagg.errors.SavedSessionError` for bytes that are not
        a saved session of a supported version, or are truncated, trailing or garbled.
        """
        loaded = saved.load(
            blob, identity=identity, registry=registry, policy=policy, rng=rng, graph=graph
        )
        session = cls.__new__(cls)
        session.config = loaded.config
        session.index = loaded.index
        session._sid = loaded.config.session_id
        session._step = loaded.step
        session._state = loaded.state
        return session

    @staticmethod
    def saved_step(blob: bytes) -> int:
        """The :attr:`step` of saved bytes, read without restoring them (keep the highest)."""
        return saved.saved_step(blob)

    # -- what the host reads ----------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """Where the session is in the round."""
        return self._state.public

    @property
    def step(self) -> int:
        """How many transitions the session made: a later snapshot has a higher step."""
        return self._step

    @property
    def aborted(self) -> bool:
        """True once the session has aborted."""
        return isinstance(self._state, Aborted)

    @property
    def abort_reason(self) -> AbortReason | None:
        """Why the session aborted (None unless it did)."""
        return self._state.reason if isinstance(self._state, Aborted) else None

    @property
    def abort_detail(self) -> str:
        """What was wrong, in words ("" unless the session aborted)."""
        return self._state.detail if isinstance(self._state, Aborted) else ""

    @property
    def included(self) -> tuple[int, ...] | None:
        """The clients whose inputs are in the sum, once the server said so (None until DONE)."""
        return self._state.included if isinstance(self._state, Done) else None

    @property
    def graph_seed(self) -> bytes | None:
        """The round's graph seed (malicious mode: derived from the reveals; None until then)."""
        graph = self._state.view
        return None if graph is None else graph.seed

    @property
    def neighbours(self) -> frozenset[int]:
        """This client's neighbours in the round's graph (excluding itself).

        In malicious mode they are known only once the KeysBroadcast's nonces gave the seed.
        """
        graph = self._state.view
        if graph is None:
            raise LocalProtocolError(
                "the neighbours of a malicious-mode round are known after the nonces are revealed"
            )
        return graph.neighbours

    # -- transitions ------------------------------------------------------------------------

    def _advance(self, following: State) -> None:
        self._state = following
        self._step += 1

    def _enter_abort(
        self, reason: AbortReason, detail: str, view: RoundGraph | None = None
    ) -> Abort:
        # The aborted state keeps only the (public) graph view: every secret of the round
        # goes with the state object that held it.
        self._advance(Aborted(view or self._state.view, reason, detail))
        return Abort(self._sid, self.index, reason.value, detail)
