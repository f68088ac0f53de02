"""Round 0: make the round keys; in malicious mode commit to a nonce, then reveal it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from secagg.crypto.keys import X25519KeyPair
from secagg.errors import UnsafeParametersError
from secagg.protocol.client.checks import check_commitments
from secagg.protocol.client.context import ClientContext, RoundGraph, StepAborted
from secagg.protocol.client.state import ClientState
from secagg.protocol.client.states.base import Graphed, State, Step
from secagg.protocol.client.states.share_keys import AwaitKeys, AwaitSignedKeys
from secagg.protocol.derive import NONCE_BYTES, seed_commitment, signed_keys_message
from secagg.protocol.messages import (
    AdvertiseKeys,
    CommitmentsBroadcast,
    PublicKeys,
    RevealNonce,
    ServerMessage,
)
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason

__all__ = ["AwaitCommitments", "New", "NewSigned"]


@dataclass(frozen=True, slots=True, eq=False)
class _Starting(State):
    """Before :meth:`start`: the input and what the client checks the round against."""

    public: ClassVar[ClientState] = ClientState.NEW
    listening: ClassVar[bool] = False
    ctx: ClientContext
    data: npt.NDArray[np.unsignedinteger]
    policy: ClientPolicy
    spec_digest: bytes | None

    def _check_round(self) -> tuple[X25519KeyPair, X25519KeyPair]:
        """Refuse a round below this client's policy or with another context or spec; else
        make the round's two key pairs (nothing is made or revealed before the checks)."""
        config = self.ctx.config
        try:
            self.policy.check(config)
        except UnsafeParametersError as exc:
            raise StepAborted(AbortReason.UNSAFE_PARAMETERS, str(exc)) from None
        if self.ctx.context_digest != config.context_digest:
            raise StepAborted(
                AbortReason.CONTEXT_MISMATCH,
                "the config's context digest differs from the one this client computed",
            )
        if self.spec_digest is not None and self.spec_digest != config.spec_digest:
            raise StepAborted(
                AbortReason.SPEC_MISMATCH,
                "the round's spec digest differs from the spec this client encoded its data with",
            )
        return X25519KeyPair.generate(self.ctx.rng), X25519KeyPair.generate(self.ctx.rng)


@dataclass(frozen=True, slots=True, eq=False)
class New(_Starting, Graphed):
    """Semi-honest mode, before start: the graph is the config's."""

    graph: RoundGraph

    def start(self) -> tuple[AwaitKeys, AdvertiseKeys]:
        enc_keys, mask_keys = self._check_round()
        ctx = self.ctx
        advert = AdvertiseKeys(
            ctx.sid, ctx.index, PublicKeys(enc_keys.public_bytes, mask_keys.public_bytes)
        )
        return AwaitKeys(ctx, self.data, enc_keys, mask_keys, self.graph), advert


@dataclass(frozen=True, slots=True, eq=False)
class NewSigned(_Starting):
    """Malicious mode, before start: the graph comes from the clients' nonces later."""

    def start(self) -> tuple[AwaitCommitments, AdvertiseKeys]:
        enc_keys, mask_keys = self._check_round()
        ctx = self.ctx
        assert ctx.identity is not None  # malicious chain: the constructor required it
        # Fresh per session: it enters this client's own view of the graph seed, so no
        # server can pick or predict the graph this client uses.
        nonce = ctx.rng.random_bytes(NONCE_BYTES)
        commitment = seed_commitment(ctx.sid, ctx.index, nonce)
        enc_public, mask_public = enc_keys.public_bytes, mask_keys.public_bytes
        signature = ctx.identity.sign(
            signed_keys_message(ctx.sid, ctx.index, enc_public, mask_public, commitment)
        )
        advert = AdvertiseKeys(
            ctx.sid, ctx.index, PublicKeys(enc_public, mask_public, signature, commitment)
        )
        return AwaitCommitments(ctx, self.data, enc_keys, mask_keys, nonce, commitment), advert


@dataclass(frozen=True, slots=True, eq=False)
class AwaitCommitments(State):
    """Malicious mode: sent keys and commitment C_u; waits for the fixed list of commitments."""

    public: ClassVar[ClientState] = ClientState.AWAIT_COMMITMENTS
    ctx: ClientContext
    data: npt.NDArray[np.unsignedinteger]
    enc_keys: X25519KeyPair
    mask_keys: X25519KeyPair
    nonce: bytes
    commitment: bytes

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, CommitmentsBroadcast):
            raise self.unexpected(msg)
        # Our nonce leaves only now, after our view of every commitment is fixed, so whatever
        # the others committed to, the seed in our view is uniformly random.
        commitments = check_commitments(self.ctx, msg.commitments, self.commitment)
        ctx = self.ctx
        following = AwaitSignedKeys(
            ctx, self.data, self.enc_keys, self.mask_keys, self.commitment, commitments
        )
        return following, RevealNonce(ctx.sid, ctx.index, self.nonce)
