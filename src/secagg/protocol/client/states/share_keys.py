"""Round 1: check the neighbours' keys, share this client's secrets, encrypt the shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from secagg.crypto import aead
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.shamir import SECRET_BYTES, split_secret
from secagg.errors import CryptoError
from secagg.protocol.client.checks import check_keys, derive_graph
from secagg.protocol.client.context import ClientContext, HeldShares, RoundGraph, StepAborted
from secagg.protocol.client.state import ClientState
from secagg.protocol.client.states.base import Graphed, State, Step
from secagg.protocol.client.states.masked_input import AwaitShares, AwaitSharesSigned
from secagg.protocol.derive import enc_key, encode_share_plaintext, share_aad
from secagg.protocol.messages import EncryptedShares, KeysBroadcast, PublicKeys, ServerMessage
from secagg.reasons import AbortReason

__all__ = ["AwaitKeys", "AwaitSignedKeys"]


@dataclass(frozen=True, slots=True, eq=False)
class AwaitKeys(Graphed):
    """Semi-honest mode: sent its keys; waits for its neighbours' keys."""

    public: ClassVar[ClientState] = ClientState.AWAIT_KEYS
    ctx: ClientContext
    data: npt.NDArray[np.unsignedinteger]
    enc_keys: X25519KeyPair
    mask_keys: X25519KeyPair
    graph: RoundGraph

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, KeysBroadcast):
            raise self.unexpected(msg)
        own = PublicKeys(self.enc_keys.public_bytes, self.mask_keys.public_bytes)
        keys = check_keys(self.ctx, msg.keys, own, self.graph.neighbours, None)
        return _deal(
            self.ctx, self.data, self.enc_keys, self.mask_keys, keys, self.graph, AwaitShares
        )


@dataclass(frozen=True, slots=True, eq=False)
class AwaitSignedKeys(State):
    """Malicious mode: revealed its nonce; waits for every reveal and its neighbours' signed
    keys. The graph is derived from the reveals, checked against the fixed commitments."""

    public: ClassVar[ClientState] = ClientState.AWAIT_KEYS
    ctx: ClientContext
    data: npt.NDArray[np.unsignedinteger]
    enc_keys: X25519KeyPair
    mask_keys: X25519KeyPair
    commitment: bytes
    commitments: dict[int, bytes]

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, KeysBroadcast):
            raise self.unexpected(msg)
        graph = derive_graph(self.ctx, self.commitments, msg.nonces)
        own = PublicKeys(
            self.enc_keys.public_bytes, self.mask_keys.public_bytes, commitment=self.commitment
        )
        try:
            keys = check_keys(self.ctx, msg.keys, own, graph.neighbours, self.commitments)
            return _deal(
                self.ctx, self.data, self.enc_keys, self.mask_keys, keys, graph, AwaitSharesSigned
            )
        except StepAborted as exc:
            exc.view = graph  # the derived seed stays visible after the abort (it is public)
            raise


def _deal(
    ctx: ClientContext,
    data: npt.NDArray[np.unsignedinteger],
    enc_keys: X25519KeyPair,
    mask_keys: X25519KeyPair,
    keys: Mapping[int, PublicKeys],
    graph: RoundGraph,
    following: type[AwaitShares],
) -> Step:
    """Share s_sk and a fresh self-mask seed b among the closed neighbourhood in U1 and seal
    each neighbour's pair of shares under the key agreed with it."""
    holders = sorted(keys)  # closed neighbourhood in U1, including this client
    seed = ctx.rng.random_bytes(SECRET_BYTES)
    key_shares = split_secret(mask_keys.private_bytes(), holders, ctx.threshold, ctx.rng)
    seed_shares = split_secret(seed, holders, ctx.threshold, ctx.rng)
    own: HeldShares | None = None
    share_keys: dict[int, bytes] = {}
    ciphertexts: dict[int, bytes] = {}
    for v, key_share, seed_share in zip(holders, key_shares, seed_shares, strict=True):
        if v == ctx.index:
            own = HeldShares(key_share, seed_share)
            continue
        try:
            key = enc_key(enc_keys, keys[v].enc_public, ctx.sid, ctx.index, v)
        except CryptoError:
            raise StepAborted(
                AbortReason.INVALID_KEY, f"key agreement with client {v} failed"
            ) from None
        # Kept for round 4, so that opening the shares held for v needs no second X25519.
        share_keys[v] = key
        plaintext = encode_share_plaintext(ctx.index, v, key_share, seed_share)
        ciphertexts[v] = aead.seal(key, plaintext, share_aad(ctx.sid, ctx.index, v), ctx.rng)
    assert own is not None  # check_keys required this client's own keys among them
    state = following(ctx, data, mask_keys, seed, own, dict(keys), share_keys, graph)
    return state, EncryptedShares(ctx.sid, ctx.index, ciphertexts)
