"""Rounds 3 and 4: sign U3 (malicious mode), reveal one share per neighbour, learn the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from secagg.crypto import aead
from secagg.errors import CryptoError, DecryptionError
from secagg.protocol.client.checks import (
    check_survivors,
    survivors_message,
    verify_consistency_signatures,
)
from secagg.protocol.client.context import ClientContext, HeldShares, RoundGraph, StepAborted
from secagg.protocol.client.state import ClientState
from secagg.protocol.client.states.base import Done, Graphed, Step
from secagg.protocol.derive import decode_share_plaintext, share_aad
from secagg.protocol.messages import (
    ConsistencyRequest,
    ConsistencySignature,
    PublicKeys,
    RoundComplete,
    ServerMessage,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.reasons import AbortReason

__all__ = ["AwaitConsistency", "AwaitResult", "AwaitSignedUnmask", "AwaitUnmask"]


@dataclass(frozen=True, slots=True, eq=False)
class _Holding(Graphed):
    """Sent its masked input; holds its own shares and the ciphertexts of its neighbours in U2
    (with the keys that open them) until it reveals one share per dealer."""

    ctx: ClientContext
    own_shares: HeldShares
    share_keys: dict[int, bytes]
    ciphertexts: dict[int, bytes]  # from neighbours in U2
    graph: RoundGraph

    def _survivors(self, msg: ConsistencyRequest | UnmaskRequest) -> tuple[int, ...]:
        return check_survivors(
            self.ctx, msg.survivors, set(self.ciphertexts), self.graph.neighbours
        )

    def _reveal(self, survivors: tuple[int, ...]) -> UnmaskResponse:
        """Round 4: reveal, per neighbour in U2, the share of b_v or of s_sk_v, never both."""
        ctx = self.ctx
        alive = frozenset(survivors)
        held = {ctx.index: self.own_shares}
        for v, blob in self.ciphertexts.items():
            try:
                plaintext = aead.open_sealed(
                    self.share_keys[v], blob, share_aad(ctx.sid, v, ctx.index)
                )
                key_share, seed_share = decode_share_plaintext(plaintext, v, ctx.index)
            except (DecryptionError, CryptoError):
                # v (or the server) sent garbage: leave v's shares out; the server names v if
                # too few remain. Aborting here would let one bad client stop everyone.
                continue
            held[v] = HeldShares(key_share, seed_share)
        self_mask_shares: dict[int, bytes] = {}
        key_shares: dict[int, bytes] = {}
        for v, shares in held.items():
            if v in alive:
                self_mask_shares[v] = shares.seed_share.to_bytes()
            else:
                key_shares[v] = shares.key_share.to_bytes()
        return UnmaskResponse(ctx.sid, ctx.index, self_mask_shares, key_shares)


@dataclass(frozen=True, slots=True, eq=False)
class AwaitUnmask(_Holding):
    """Semi-honest mode: waits for U3 in the unmask request."""

    public: ClassVar[ClientState] = ClientState.AWAIT_UNMASK

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, UnmaskRequest):
            raise self.unexpected(msg)
        survivors = self._survivors(msg)
        return AwaitResult(self.graph, None, self.ctx.config.num_clients), self._reveal(survivors)


@dataclass(frozen=True, slots=True, eq=False)
class AwaitConsistency(_Holding):
    """Malicious mode: waits for U3 to sign (one signed view per session, never two)."""

    public: ClassVar[ClientState] = ClientState.AWAIT_CONSISTENCY
    peer_keys: dict[int, PublicKeys]

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, ConsistencyRequest):
            raise self.unexpected(msg)
        ctx = self.ctx
        assert ctx.identity is not None  # malicious chain: the constructor required it
        survivors = self._survivors(msg)
        message = survivors_message(ctx, self.graph.seed, self.peer_keys, survivors, ctx.index)
        following = AwaitSignedUnmask(
            ctx,
            self.own_shares,
            self.share_keys,
            self.ciphertexts,
            self.graph,
            self.peer_keys,
            survivors,
        )
        return following, ConsistencySignature(ctx.sid, ctx.index, ctx.identity.sign(message))


@dataclass(frozen=True, slots=True, eq=False)
class AwaitSignedUnmask(_Holding):
    """Malicious mode: signed U3; waits for the same U3 with t neighbours' signatures on it."""

    public: ClassVar[ClientState] = ClientState.AWAIT_UNMASK
    peer_keys: dict[int, PublicKeys]
    survivors: tuple[int, ...]  # the U3 this client signed

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, UnmaskRequest):
            raise self.unexpected(msg)
        ctx = self.ctx
        survivors = check_survivors(
            ctx, msg.survivors, set(self.ciphertexts), self.graph.neighbours, self.survivors
        )
        verify_consistency_signatures(ctx, survivors, msg.signatures, self.graph, self.peer_keys)
        return AwaitResult(self.graph, survivors, ctx.config.num_clients), self._reveal(survivors)


@dataclass(frozen=True, slots=True, eq=False)
class AwaitResult(Graphed):
    """Revealed its shares; waits for the final set. Holds no secret."""

    public: ClassVar[ClientState] = ClientState.AWAIT_RESULT
    graph: RoundGraph
    signed: tuple[int, ...] | None  # the U3 this client signed (malicious mode)
    num_clients: int

    def step(self, msg: ServerMessage) -> Step:
        if isinstance(msg, UnmaskRequest):
            # Answering again could reveal the other kind of share for some neighbour.
            raise StepAborted(
                AbortReason.BOTH_SHARES_REQUESTED,
                "a second unmask request: one share per neighbour was already revealed",
            )
        if not isinstance(msg, RoundComplete):
            raise self.unexpected(msg)
        included = tuple(msg.included)
        n = self.num_clients
        if not all(type(i) is int and 1 <= i <= n for i in included):
            raise StepAborted(AbortReason.MALFORMED, "the final set must hold indices in 1..n")
        if self.signed is not None and included != self.signed:
            raise StepAborted(AbortReason.INCONSISTENT_SETS, "final set differs from U3")
        return Done(self.graph, included), None
