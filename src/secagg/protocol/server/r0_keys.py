"""Round 0 on the server: collect the advertised keys (malicious mode: signed, with seed
commitments, then the nonce reveals that fix the graph)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from secagg.crypto.keys import validate_public_key
from secagg.crypto.signing import verify_signature
from secagg.errors import CryptoError, RoundAbortedError
from secagg.protocol.derive import (
    NONCE_BYTES,
    derive_graph_seed,
    round_graph,
    seed_commitment,
    signed_keys_message,
)
from secagg.protocol.messages import (
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    KeysBroadcast,
    PublicKeys,
    RevealNonce,
    Round,
)
from secagg.protocol.server.base import Drop, Outbox, RoundContext, ServerState, Transition
from secagg.protocol.server.r1_shares import CollectShares
from secagg.protocol.server.r2_masked import CollectMasked, CollectMaskedThenSign
from secagg.protocol.server.state import ClientRecord, ServerPhase
from secagg.reasons import AbortReason, DropReason

__all__ = ["CollectKeys", "CollectReveals", "CollectSignedKeys"]

_ROUND = Round.ADVERTISE_KEYS


class CollectKeys(ServerState):
    """Semi-honest round 0: each client's two public keys, no commitment."""

    phase = ServerPhase.COLLECT_KEYS
    collecting = _ROUND
    accepts = AdvertiseKeys

    def __init__(self, ctx: RoundContext) -> None:
        super().__init__(ctx)
        self.keys: dict[int, PublicKeys] = {}

    def accept(self, msg: ClientMessage) -> ServerState:
        assert isinstance(msg, AdvertiseKeys)
        keys = _valid_keys(msg)
        self._check_commitment(msg, keys)
        self.keys[msg.sender] = keys
        return self

    def _check_commitment(self, msg: AdvertiseKeys, keys: PublicKeys) -> None:
        if keys.commitment:
            raise Drop(DropReason.MALFORMED, "a seed commitment in a semi-honest round")

    def end(self) -> Transition:
        self._drop_duplicate_keys()
        advertised = self.ctx.with_round(_ROUND)
        return broadcast_keys(self.ctx, self.keys, advertised, {}, then=CollectMasked)

    def _drop_duplicate_keys(self) -> None:
        owners: dict[bytes, list[int]] = {}
        for u, keys in self.keys.items():
            if self.ctx.clients[u].active:
                for public in (keys.enc_public, keys.mask_public):
                    owners.setdefault(public, []).append(u)
        for holders in owners.values():
            if len(holders) > 1:
                for u in holders:
                    self.ctx.drop(
                        u, DropReason.DUPLICATE_KEY, "advertised a key another client uses", _ROUND
                    )


class CollectSignedKeys(CollectKeys):
    """Malicious round 0, first step: keys and seed commitment, signed by the identity key."""

    def _check_commitment(self, msg: AdvertiseKeys, keys: PublicKeys) -> None:
        assert self.ctx.registry is not None  # the session requires one in malicious mode
        if not isinstance(keys.commitment, bytes) or len(keys.commitment) != 32:
            raise Drop(DropReason.MALFORMED, "seed commitment must be 32 bytes")
        identity = self.ctx.registry.identity_key(msg.sender)
        if identity is None:
            raise Drop(DropReason.UNKNOWN_CLIENT, "sender is not in the identity registry")
        signed = signed_keys_message(
            self.ctx.sid, msg.sender, keys.enc_public, keys.mask_public, keys.commitment
        )
        try:
            verify_signature(identity, keys.signature, signed)
        except CryptoError:
            raise Drop(DropReason.BAD_SIGNATURE, "key advertisement signature") from None

    def end(self) -> Transition:
        # Fix the commitment list before any nonce is revealed; the graph comes after.
        self._drop_duplicate_keys()
        committed = self.ctx.with_round(_ROUND)
        self.ctx.require_at_least(len(committed), "advertised keys")
        commitments = {u: self.keys[u].commitment for u in sorted(committed)}
        following = CollectReveals(self.ctx, {u: self.keys[u] for u in committed}, commitments)
        listed = CommitmentsBroadcast(self.ctx.sid, dict(commitments))  # one list, sent to all
        return following, dict.fromkeys(commitments, listed)


class CollectReveals(ServerState):
    """Malicious round 0, second step: the nonce behind every listed commitment."""

    phase = ServerPhase.COLLECT_REVEALS
    collecting = _ROUND

    def __init__(
        self, ctx: RoundContext, keys: dict[int, PublicKeys], commitments: dict[int, bytes]
    ) -> None:
        super().__init__(ctx)
        self.keys = keys
        self.commitments = commitments
        self.nonces: dict[int, bytes] = {}

    def expected(self) -> frozenset[int]:
        clients = self.ctx.clients
        return frozenset(u for u in self.commitments if clients[u].active and u not in self.nonces)

    def reveal(self, record: ClientRecord, msg: RevealNonce) -> ServerState:
        if record.revealed:
            raise Drop(DropReason.DUPLICATE, "second nonce reveal")
        committed = self.commitments.get(msg.sender)
        if committed is None:
            raise Drop(DropReason.WRONG_ROUND, f"nonce reveal during {self.phase.value}")
        nonce = msg.nonce
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise Drop(DropReason.MALFORMED, f"nonce must be {NONCE_BYTES} bytes")
        if seed_commitment(self.ctx.sid, msg.sender, nonce) != committed:
            raise Drop(DropReason.BAD_REVEAL, "nonce does not match the signed commitment")
        self.nonces[msg.sender] = nonce
        record.revealed = True
        return self

    def end(self) -> Transition:
        missing = sorted(set(self.commitments) - set(self.nonces))
        if missing:
            # Excluding them would let a server pick among subsets of its own clients' reveals.
            raise RoundAbortedError(
                AbortReason.MISSING_REVEAL.value,
                f"{len(missing)} committed clients did not reveal their nonce "
                f"(first: {missing[:10]}); the graph seed needs every reveal",
            )
        ctx = self.ctx
        ctx.graph_seed = derive_graph_seed(ctx.sid, self.nonces)
        ctx.graph = round_graph(ctx.graph_seed, ctx.config.num_clients, ctx.config.degree)
        advertised = ctx.active() & set(self.commitments)
        return broadcast_keys(ctx, self.keys, advertised, self.nonces, then=CollectMaskedThenSign)


def broadcast_keys(
    ctx: RoundContext,
    keys: Mapping[int, PublicKeys],
    advertised: Iterable[int],
    nonces: Mapping[int, bytes],
    *,
    then: type[CollectMasked],
) -> Transition:
    """End round 0: U1 (settled), each member's neighbours' keys; then collect shares."""
    u1 = ctx.settle(frozenset(advertised), "advertised keys", _ROUND)
    kept = {u: keys[u] for u in u1}
    revealed = dict(nonces)  # one copy, shared by every broadcast
    outbox: Outbox = {
        u: KeysBroadcast(ctx.sid, {v: kept[v] for v in sorted(ctx.closed(u, u1))}, revealed)
        for u in sorted(u1)
    }
    return CollectShares(ctx, kept, u1, then=then), outbox


def _valid_keys(msg: AdvertiseKeys) -> PublicKeys:
    keys = msg.keys
    if not isinstance(keys, PublicKeys):
        raise Drop(DropReason.MALFORMED, "keys field is not a PublicKeys")
    for public in (keys.enc_public, keys.mask_public):
        try:
            validate_public_key(public)
        except CryptoError as exc:
            raise Drop(DropReason.INVALID_KEY, str(exc)) from None
    if keys.enc_public == keys.mask_public:
        raise Drop(DropReason.DUPLICATE_KEY, "encryption and mask keys are equal")
    return keys
