"""The server side of a round as a sans-IO state machine.

The caller feeds every client message to :meth:`ServerSession.receive` (which never raises on
bad input: it drops the sender with a reason), reports vanished clients with :meth:`drop`, and
decides when a phase's waiting ends (all of :meth:`expected` arrived, or a deadline passed) by
calling :meth:`advance`, which returns the messages to send. Masked inputs are added into one
running sum as they arrive, so memory is O(D) whatever the number of clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from secagg.crypto import aead
from secagg.crypto.keys import validate_public_key
from secagg.crypto.prg import ring_mask, word_dtype
from secagg.crypto.shamir import Share
from secagg.crypto.signing import verify_signature
from secagg.errors import (
    ConfigError,
    CryptoError,
    LocalProtocolError,
    RoundAbortedError,
)
from secagg.graph import NeighbourGraph
from secagg.protocol.config import RoundConfig
from secagg.protocol.derive import (
    NONCE_BYTES,
    SHARE_PLAINTEXT_BYTES,
    derive_graph_seed,
    round_graph,
    seed_commitment,
    signed_keys_message,
    signed_survivors_message,
)
from secagg.protocol.identity import IdentityRegistry
from secagg.protocol.messages import (
    SERVER_SENDER,
    Abort,
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    ConsistencyRequest,
    ConsistencySignature,
    EncryptedShares,
    KeysBroadcast,
    MaskedInput,
    PublicKeys,
    RevealNonce,
    Round,
    RoundComplete,
    ServerMessage,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.protocol.server.state import ClientRecord, ServerPhase
from secagg.protocol.server.unmask import MaskExpander, reconstruct_all, remove_masks
from secagg.reasons import AbortReason, DropReason

__all__ = ["AggregationResult", "ServerSession", "ServerView"]

CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + aead.OVERHEAD

_PHASE_ROUND = {
    ServerPhase.COLLECT_KEYS: Round.ADVERTISE_KEYS,
    ServerPhase.COLLECT_REVEALS: Round.ADVERTISE_KEYS,  # round 0's second step
    ServerPhase.COLLECT_SHARES: Round.SHARE_KEYS,
    ServerPhase.COLLECT_MASKED: Round.MASKED_INPUT,
    ServerPhase.COLLECT_SIGNATURES: Round.CONSISTENCY_CHECK,
    ServerPhase.COLLECT_UNMASK: Round.UNMASKING,
}
_MESSAGE_ROUND: dict[type, Round] = {
    AdvertiseKeys: Round.ADVERTISE_KEYS,
    EncryptedShares: Round.SHARE_KEYS,
    MaskedInput: Round.MASKED_INPUT,
    ConsistencySignature: Round.CONSISTENCY_CHECK,
    UnmaskResponse: Round.UNMASKING,
}


class _Drop(Exception):  # noqa: N818 - internal control flow, never escapes the session
    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AggregationResult:
    """The outcome of a round: the sum of the included clients' inputs mod 2^bits."""

    total: npt.NDArray[np.unsignedinteger]
    included: tuple[int, ...]
    dropped: Mapping[int, tuple[Round, DropReason, str]]
    late: list[int]  # included, but dropped afterwards (their later messages went unused)
    bits: int


@dataclass(slots=True)
class ServerView:
    """Everything secret-bearing the server obtained, for auditing privacy invariants.

    ``seed_shares[v]`` / ``key_shares[v]`` are the holder indices whose share of b_v / s_sk_v
    the server received.
    """

    seed_shares: dict[int, set[int]] = field(default_factory=dict)
    key_shares: dict[int, set[int]] = field(default_factory=dict)


class ServerSession:
    """The aggregation server's part in one round.

    In malicious mode round 0 has two steps: keys with seed commitments, then (after the
    server sent every client the list of commitments) the nonces; the graph exists only then.
    """

    def __init__(
        self,
        config: RoundConfig,
        *,
        graph: NeighbourGraph | None = None,
        registry: IdentityRegistry | None = None,
        expand_masks: MaskExpander | None = None,
    ) -> None:
        if config.mode == "malicious" and registry is None:
            raise ConfigError("malicious mode needs the identity registry")
        self.config = config
        self._sid = config.session_id
        if config.mode == "malicious" and graph is not None:
            raise ConfigError(
                "a malicious-mode graph is derived from the clients' nonces; do not pass graph="
            )
        self._graph: NeighbourGraph | None = None
        self._graph_seed: bytes | None = None
        if config.mode != "malicious":
            self._graph_seed = config.graph_seed
            self._graph = graph or round_graph(config.graph_seed, config.num_clients, config.degree)
        self._registry = registry
        self._expand_masks = expand_masks
        self.phase = ServerPhase.COLLECT_KEYS
        self.clients = {i: ClientRecord(i) for i in range(1, config.num_clients + 1)}
        self.abort_reason: AbortReason | None = None
        self.abort_detail = ""
        self.view = ServerView()
        self.rejected = 0  # messages from unknown senders, ignored
        self._keys: dict[int, PublicKeys] = {}
        self._ciphertexts: dict[int, dict[int, bytes]] = {}
        self._u1: frozenset[int] = frozenset()
        self._committed: dict[int, bytes] = {}  # malicious mode: index -> C_u, for U1
        self._nonces: dict[int, bytes] = {}  # malicious mode: index -> r_u, verified
        self._u2: frozenset[int] = frozenset()
        # Clients whose masked input is in the running sum: U3. Membership is permanent, since
        # the sum cannot give an input back; a later drop only stops using their messages.
        self._masked: set[int] = set()
        self._survivors: tuple[int, ...] = ()
        self._signatures: dict[int, bytes] = {}
        self._seed_shares: dict[int, dict[int, Share]] = {}
        self._key_shares: dict[int, dict[int, Share]] = {}
        # The running sum is allocated by the first masked input that is accepted, never
        # before: a round aborted earlier (e.g. joiners that go silent) costs no O(D) memory.
        self._sum: npt.NDArray[np.unsignedinteger] | None = None
        self._result: AggregationResult | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def graph(self) -> NeighbourGraph:
        """The round's neighbour graph (malicious mode: once the nonces are revealed)."""
        if self._graph is None:
            raise LocalProtocolError("the graph of this round is not derived yet")
        return self._graph

    @property
    def graph_seed(self) -> bytes | None:
        """The seed the graph was built from; None until derived (malicious mode)."""
        return self._graph_seed

    @property
    def collecting(self) -> Round | None:
        """The round whose client messages the server is collecting now (None once over)."""
        return _PHASE_ROUND.get(self.phase)

    def active(self) -> frozenset[int]:
        """Clients still taking part."""
        return frozenset(i for i, r in self.clients.items() if r.active)

    def expected(self) -> frozenset[int]:
        """Active clients whose message for the current phase has not arrived yet."""
        round_ = _PHASE_ROUND.get(self.phase)
        if round_ is None:
            return frozenset()
        if self.phase is ServerPhase.COLLECT_REVEALS:
            return frozenset(
                i for i in self._committed if self.clients[i].active and i not in self._nonces
            )
        return frozenset(i for i, r in self.clients.items() if r.active and r.completed < round_)

    def receive(self, msg: ClientMessage) -> None:
        """Take one client message. Misbehaviour drops the sender; nothing is raised."""
        sender = getattr(msg, "sender", None)
        if isinstance(sender, bool) or not isinstance(sender, int) or sender not in self.clients:
            self.rejected += 1
            return
        record = self.clients[sender]
        if not record.active or self.phase in (ServerPhase.DONE, ServerPhase.ABORTED):
            return
        try:
            self._accept(record, msg)
        except _Drop as exc:
            self.drop(sender, exc.reason, exc.detail)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            # A field of the wrong type or shape that no specific check caught: still only the
            # sender's problem. Name the failure's type, never its text (it may quote input).
            self.drop(sender, DropReason.MALFORMED, f"malformed fields ({type(exc).__name__})")

    def drop(self, index: int, reason: DropReason, detail: str = "") -> None:
        """Stop counting client ``index`` (it vanished, timed out or misbehaved)."""
        record = self.clients.get(index)
        if record is None or not record.active:
            return
        record.reason = reason
        record.detail = detail
        record.dropped_in = _PHASE_ROUND.get(self.phase, Round.UNMASKING)

    def advance(self) -> dict[int, ServerMessage]:
        """End the current phase: returns the messages to send, keyed by client index.

        When too few clients remain the round aborts: every active client gets an
        :class:`Abort` and :attr:`result` raises :class:`RoundAbortedError`.
        """
        round_ = _PHASE_ROUND.get(self.phase)
        if round_ is None:
            raise LocalProtocolError(f"the round is {self.phase.value}; nothing to advance")
        before = self.active()
        for i in self.expected():
            self.drop(i, DropReason.NO_RESPONSE, f"no message for round {round_.label}")
        try:
            match self.phase:
                case ServerPhase.COLLECT_KEYS:
                    outbox = self._end_keys()
                case ServerPhase.COLLECT_REVEALS:
                    outbox = self._end_reveals()
                case ServerPhase.COLLECT_SHARES:
                    outbox = self._end_shares()
                case ServerPhase.COLLECT_MASKED:
                    outbox = self._end_masked()
                case ServerPhase.COLLECT_SIGNATURES:
                    outbox = self._end_signatures()
                case _:
                    outbox = self._end_unmask()
        except RoundAbortedError as exc:
            outbox = self._abort(AbortReason(exc.reason), exc.detail)
        # Tell the clients dropped just now, so none waits for a message that never comes. One
        # whose input is in a finished sum is told so, whatever happened to it afterwards.
        included = frozenset(self._survivors) if self.phase is ServerPhase.DONE else frozenset()
        for i in sorted(before - self.active() - set(outbox)):
            if i in included:
                outbox[i] = RoundComplete(self._sid, self._survivors)
                continue
            record = self.clients[i]
            outbox[i] = Abort(self._sid, SERVER_SENDER, str(record.reason), record.detail)
        return outbox

    @property
    def result(self) -> AggregationResult:
        """The round's result; raises :class:`RoundAbortedError` if it aborted."""
        if self.phase is ServerPhase.ABORTED:
            raise RoundAbortedError(str(self.abort_reason), self.abort_detail)
        if self._result is None:
            raise LocalProtocolError(f"no result yet: the round is {self.phase.value}")
        return self._result

    def dropped(self) -> dict[int, tuple[Round, DropReason, str]]:
        """Every dropped client: the round it was dropped in, the reason and a detail."""
        return {
            i: (r.dropped_in or Round.ADVERTISE_KEYS, r.reason, r.detail)
            for i, r in self.clients.items()
            if r.reason is not None
        }

    # -- receiving ----------------------------------------------------------------------------

    def _accept(self, record: ClientRecord, msg: ClientMessage) -> None:
        if isinstance(msg, Abort):
            raise _Drop(DropReason.CLIENT_ABORTED, f"client aborted: {msg.reason}")
        if msg.session_id != self._sid:
            raise _Drop(DropReason.WRONG_SESSION, "message carries another session id")
        if isinstance(msg, RevealNonce):
            self._on_reveal(msg)
            return
        msg_round = _MESSAGE_ROUND.get(type(msg))
        if msg_round is None:
            raise _Drop(DropReason.MALFORMED, f"unknown message type {type(msg).__name__}")
        current = _PHASE_ROUND[self.phase]
        if msg_round != current:
            if msg_round < current and record.completed >= msg_round:
                raise _Drop(DropReason.DUPLICATE, f"repeated message for round {msg_round.label}")
            raise _Drop(
                DropReason.WRONG_ROUND,
                f"message for round {msg_round.label} during round {current.label}",
            )
        if record.completed >= current or self.phase is ServerPhase.COLLECT_REVEALS:
            raise _Drop(DropReason.DUPLICATE, f"second message for round {current.label}")
        match msg:
            case AdvertiseKeys():
                self._on_keys(msg)
            case EncryptedShares():
                self._on_shares(msg)
            case MaskedInput():
                self._on_masked(msg)
            case ConsistencySignature():
                self._on_signature(msg)
            case UnmaskResponse():
                self._on_unmask(msg)
        record.completed = current

    def _on_keys(self, msg: AdvertiseKeys) -> None:
        keys = msg.keys
        if not isinstance(keys, PublicKeys):
            raise _Drop(DropReason.MALFORMED, "keys field is not a PublicKeys")
        for public in (keys.enc_public, keys.mask_public):
            try:
                validate_public_key(public)
            except CryptoError as exc:
                raise _Drop(DropReason.INVALID_KEY, str(exc)) from None
        if keys.enc_public == keys.mask_public:
            raise _Drop(DropReason.DUPLICATE_KEY, "encryption and mask keys are equal")
        if self.config.mode == "malicious":
            assert self._registry is not None
            if not isinstance(keys.commitment, bytes) or len(keys.commitment) != 32:
                raise _Drop(DropReason.MALFORMED, "seed commitment must be 32 bytes")
            identity = self._registry.identity_key(msg.sender)
            if identity is None:
                raise _Drop(DropReason.UNKNOWN_CLIENT, "sender is not in the identity registry")
            try:
                verify_signature(
                    identity,
                    keys.signature,
                    signed_keys_message(
                        self._sid, msg.sender, keys.enc_public, keys.mask_public, keys.commitment
                    ),
                )
            except CryptoError:
                raise _Drop(DropReason.BAD_SIGNATURE, "key advertisement signature") from None
        elif keys.commitment:
            raise _Drop(DropReason.MALFORMED, "a seed commitment in a semi-honest round")
        self._keys[msg.sender] = keys

    def _on_reveal(self, msg: RevealNonce) -> None:
        if msg.sender in self._nonces:
            raise _Drop(DropReason.DUPLICATE, "second nonce reveal")
        if self.phase is not ServerPhase.COLLECT_REVEALS or msg.sender not in self._committed:
            raise _Drop(DropReason.WRONG_ROUND, f"nonce reveal during {self.phase.value}")
        nonce = msg.nonce
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise _Drop(DropReason.MALFORMED, f"nonce must be {NONCE_BYTES} bytes")
        if seed_commitment(self._sid, msg.sender, nonce) != self._committed[msg.sender]:
            raise _Drop(DropReason.BAD_REVEAL, "nonce does not match the signed commitment")
        self._nonces[msg.sender] = nonce

    def _on_shares(self, msg: EncryptedShares) -> None:
        expected = self._closed(msg.sender, self._u1) - {msg.sender}
        got = set(msg.ciphertexts)
        if got != expected:
            raise _Drop(
                DropReason.BAD_SHARES,
                f"ciphertexts for {len(got)} recipients; "
                f"expected its {len(expected)} neighbours in U1",
            )
        for blob in msg.ciphertexts.values():
            if not isinstance(blob, bytes) or len(blob) != CIPHERTEXT_BYTES:
                raise _Drop(
                    DropReason.WRONG_LENGTH, f"ciphertexts must be {CIPHERTEXT_BYTES} bytes"
                )
        self._ciphertexts[msg.sender] = dict(msg.ciphertexts)

    def _on_masked(self, msg: MaskedInput) -> None:
        vector = msg.vector
        if not isinstance(vector, np.ndarray) or vector.ndim != 1:
            raise _Drop(DropReason.MALFORMED, "masked input must be a 1-D array")
        if vector.shape[0] != self.config.dim:
            raise _Drop(
                DropReason.WRONG_LENGTH,
                f"masked input has {vector.shape[0]} words; expected {self.config.dim}",
            )
        dtype = np.dtype(word_dtype(self.config.bits))
        if vector.dtype != dtype:
            raise _Drop(
                DropReason.MALFORMED, f"masked input dtype {vector.dtype}; expected {dtype}"
            )
        if self.config.bits not in (32, 64) and int(vector.max()) > ring_mask(self.config.bits):
            raise _Drop(DropReason.MALFORMED, f"masked input words exceed {self.config.bits} bits")
        if self._sum is None:
            self._sum = np.zeros(self.config.dim, dtype=dtype)
        np.add(self._sum, vector, out=self._sum)
        self._masked.add(msg.sender)

    def _on_signature(self, msg: ConsistencySignature) -> None:
        assert self._registry is not None
        identity = self._registry.identity_key(msg.sender)
        if identity is None:
            raise _Drop(DropReason.UNKNOWN_CLIENT, "sender is not in the identity registry")
        assert self._graph_seed is not None
        keys = self._keys[msg.sender]
        message = signed_survivors_message(
            self._sid,
            self._graph_seed,
            self.config.context_digest,
            self._survivors,
            keys.enc_public,
            keys.mask_public,
        )
        try:
            verify_signature(identity, msg.signature, message)
        except CryptoError:
            raise _Drop(DropReason.BAD_SIGNATURE, "consistency signature") from None
        self._signatures[msg.sender] = msg.signature

    def _on_unmask(self, msg: UnmaskResponse) -> None:
        u = msg.sender
        alive = frozenset(self._survivors)
        holders_of = self._closed(u, self._u2)
        seed_shares: dict[int, Share] = {}
        key_shares: dict[int, Share] = {}
        for shares, wanted, out, kind in (
            (msg.self_mask_shares, alive, seed_shares, "self-mask"),
            (msg.key_shares, self._u2 - alive, key_shares, "mask-key"),
        ):
            for v, blob in shares.items():
                if v not in holders_of or v not in wanted:
                    raise _Drop(DropReason.BAD_SHARES, f"{kind} share for client {v} not requested")
                try:
                    share = Share.from_bytes(blob)
                except (CryptoError, TypeError):
                    raise _Drop(DropReason.BAD_SHARES, f"malformed {kind} share") from None
                if share.x != u:
                    raise _Drop(DropReason.BAD_SHARES, "share evaluation point is not the sender's")
                out[v] = share
        for v, share in seed_shares.items():
            self._seed_shares.setdefault(v, {})[u] = share
            self.view.seed_shares.setdefault(v, set()).add(u)
        for v, share in key_shares.items():
            self._key_shares.setdefault(v, {})[u] = share
            self.view.key_shares.setdefault(v, set()).add(u)

    # -- ending phases ------------------------------------------------------------------------

    def _end_keys(self) -> dict[int, ServerMessage]:
        self._drop_duplicate_keys()
        if self.config.mode == "malicious":
            # Fix the commitment list before any nonce is revealed; the graph comes after.
            committed = self._with_round(Round.ADVERTISE_KEYS)
            self._require_at_least(len(committed), "advertised keys")
            self._committed = {u: self._keys[u].commitment for u in sorted(committed)}
            self.phase = ServerPhase.COLLECT_REVEALS
            listed = dict(self._committed)
            return {u: CommitmentsBroadcast(self._sid, listed) for u in self._committed}
        return self._broadcast_keys(self._with_round(Round.ADVERTISE_KEYS), {})

    def _end_reveals(self) -> dict[int, ServerMessage]:
        missing = sorted(set(self._committed) - set(self._nonces))
        if missing:
            # Excluding them would let a server pick among subsets of its own clients' reveals.
            raise RoundAbortedError(
                AbortReason.MISSING_REVEAL.value,
                f"{len(missing)} committed clients did not reveal their nonce "
                f"(first: {missing[:10]}); the graph seed needs every reveal",
            )
        self._graph_seed = derive_graph_seed(self._sid, self._nonces)
        self._graph = round_graph(self._graph_seed, self.config.num_clients, self.config.degree)
        return self._broadcast_keys(self.active() & set(self._committed), dict(self._nonces))

    def _broadcast_keys(
        self, advertised: Iterable[int], nonces: Mapping[int, bytes]
    ) -> dict[int, ServerMessage]:
        u1 = self._settle(frozenset(advertised), "advertised keys")
        self._u1 = u1
        self.phase = ServerPhase.COLLECT_SHARES
        return {
            u: KeysBroadcast(
                self._sid, {v: self._keys[v] for v in sorted(self._closed(u, u1))}, nonces
            )
            for u in sorted(u1)
        }

    def _end_shares(self) -> dict[int, ServerMessage]:
        u2 = self._settle(self._with_round(Round.SHARE_KEYS), "shared keys")
        self._u2 = u2
        self.phase = ServerPhase.COLLECT_MASKED
        outbox: dict[int, ServerMessage] = {
            u: SharesDelivery(
                self._sid,
                {v: self._ciphertexts[v][u] for v in sorted(self._closed(u, u2) - {u})},
            )
            for u in sorted(u2)
        }
        # Forwarded: the server has no further use for them (keeps its memory O(D) + O(n)).
        self._ciphertexts = {}
        return outbox

    def _end_masked(self) -> dict[int, ServerMessage]:
        self._require_at_least(len(self._masked), "clients sent masked input")
        self._survivors = tuple(sorted(self._masked))
        reachable = sorted(self.active() & self._masked)
        if self.config.mode == "malicious":
            self.phase = ServerPhase.COLLECT_SIGNATURES
            return {u: ConsistencyRequest(self._sid, self._survivors) for u in reachable}
        self.phase = ServerPhase.COLLECT_UNMASK
        return {u: UnmaskRequest(self._sid, self._survivors) for u in reachable}

    def _end_signatures(self) -> dict[int, ServerMessage]:
        u4 = self._with_round(Round.CONSISTENCY_CHECK)
        self._require_at_least(len(u4), "clients signed U3")
        self.phase = ServerPhase.COLLECT_UNMASK
        # A client counts only signatures from its own closed neighbourhood: send just those.
        return {
            u: UnmaskRequest(
                self._sid,
                self._survivors,
                {v: self._signatures[v] for v in sorted(self._closed(u, u4))},
            )
            for u in sorted(u4)
        }

    def _end_unmask(self) -> dict[int, ServerMessage]:
        assert self._sum is not None  # U3 is non-empty: _end_masked required >= t inputs
        alive = frozenset(self._survivors)
        mask_publics = {v: self._keys[v].mask_public for v in self._u2}
        recovered = reconstruct_all(
            {v: self._seed_shares.get(v, {}) for v in alive},
            {v: self._key_shares.get(v, {}) for v in self._u2 - alive},
            mask_publics,
            self.config.threshold,
        )
        for holder in sorted(recovered.bad_holders):
            self.drop(holder, DropReason.INCONSISTENT_SHARES, "revealed a share off the polynomial")
        if recovered.failures:
            first = recovered.failures[0]
            reason = (
                AbortReason.TOO_FEW_SHARES
                if first.reason == "too-few-shares"
                else AbortReason.INCONSISTENT_SHARES
            )
            dealers = sorted({f.dealer for f in recovered.failures})
            raise RoundAbortedError(
                reason.value,
                f"cannot recover the secrets of {len(dealers)} clients "
                f"(first: client {first.dealer}'s {first.kind}: {first.detail}); "
                f"dealers: {dealers[:20]}",
            )
        remove_masks(
            self._sum,
            self.config.bits,
            self._sid,
            self.graph,
            alive,
            recovered,
            mask_publics,
            self._expand_masks,
        )
        if self.config.bits not in (32, 64):
            np.bitwise_and(self._sum, ring_mask(self.config.bits), out=self._sum)
        dropped = self.dropped()
        self._result = AggregationResult(
            total=self._sum,
            included=self._survivors,
            dropped={i: d for i, d in dropped.items() if i not in alive},
            late=[i for i in dropped if i in alive],
            bits=self.config.bits,
        )
        self.phase = ServerPhase.DONE
        return {u: RoundComplete(self._sid, self._survivors) for u in sorted(self.active() & alive)}

    # -- helpers ------------------------------------------------------------------------------

    def _closed(self, u: int, among: Iterable[int]) -> frozenset[int]:
        """u's closed neighbourhood (itself and its neighbours) restricted to ``among``."""
        # No copy of a set: _settle asks this for every member, and copying the group each
        # time made settling O(n^2) (hours at n = 100,000).
        pool = among if isinstance(among, set | frozenset) else frozenset(among)
        return frozenset(v for v in (u, *self.graph.neighbours(u)) if v in pool)

    def _with_round(self, round_: Round) -> frozenset[int]:
        return frozenset(i for i, r in self.clients.items() if r.active and r.completed >= round_)

    def _settle(self, group: frozenset[int], what: str) -> frozenset[int]:
        """Drop members with fewer than t of their closed neighbourhood in the group, repeatedly.

        Such a client could not go on (it would abort), and counting it would let the next
        phase hand out sets it cannot use.
        """
        t = self.config.threshold
        members = set(group)
        changed = True
        while changed:
            changed = False
            for u in sorted(members):
                if len(self._closed(u, members)) < t:
                    members.discard(u)
                    self.drop(u, DropReason.NOT_SELECTED, f"fewer than {t} neighbours {what}")
                    changed = True
        self._require_at_least(len(members), what)
        return frozenset(members)

    def _require_at_least(self, count: int, what: str) -> None:
        if count < self.config.threshold:
            raise RoundAbortedError(
                AbortReason.TOO_FEW_CLIENTS.value,
                f"only {count} {what}; threshold is {self.config.threshold}",
            )

    def _drop_duplicate_keys(self) -> None:
        owners: dict[bytes, list[int]] = {}
        for u, keys in self._keys.items():
            if self.clients[u].active:
                for public in (keys.enc_public, keys.mask_public):
                    owners.setdefault(public, []).append(u)
        for holders in owners.values():
            if len(holders) > 1:
                for u in holders:
                    self.drop(u, DropReason.DUPLICATE_KEY, "advertised a key another client uses")

    def _abort(self, reason: AbortReason, detail: str) -> dict[int, ServerMessage]:
        before = self.active()
        self.phase = ServerPhase.ABORTED
        self.abort_reason = reason
        self.abort_detail = detail
        # The running sum holds masked inputs only: let it go so nothing partial is ever used.
        # Never write to it here (filling it would touch every page of an O(D) buffer).
        self._sum = None
        return {u: Abort(self._sid, SERVER_SENDER, reason.value, detail) for u in sorted(before)}
