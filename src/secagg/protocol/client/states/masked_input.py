"""Round 2: keep the share ciphertexts sent to this client and mask its input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.prg import MaskPRG
from secagg.errors import CryptoError
from secagg.protocol.client.checks import check_count
from secagg.protocol.client.context import ClientContext, HeldShares, RoundGraph, StepAborted
from secagg.protocol.client.state import ClientState
from secagg.protocol.client.states.base import Graphed, State, Step
from secagg.protocol.client.states.unmasking import AwaitConsistency, AwaitUnmask
from secagg.protocol.derive import pair_mask_key, self_mask_key
from secagg.protocol.messages import MaskedInput, PublicKeys, ServerMessage, SharesDelivery
from secagg.reasons import AbortReason

__all__ = ["AwaitShares", "AwaitSharesSigned"]


@dataclass(frozen=True, slots=True, eq=False)
class AwaitShares(Graphed):
    """Sent its encrypted shares; waits for the ciphertexts its neighbours in U2 sent it.

    Semi-honest mode: the unmask request follows. :class:`AwaitSharesSigned` is the
    malicious-mode variant, followed by the consistency round.
    """

    public: ClassVar[ClientState] = ClientState.AWAIT_SHARES
    ctx: ClientContext
    data: npt.NDArray[np.unsignedinteger]
    mask_keys: X25519KeyPair
    seed: bytes
    own_shares: HeldShares
    peer_keys: dict[int, PublicKeys]
    share_keys: dict[int, bytes]
    graph: RoundGraph

    def step(self, msg: ServerMessage) -> Step:
        if not isinstance(msg, SharesDelivery):
            raise self.unexpected(msg)
        ctx = self.ctx
        ciphertexts = dict(msg.ciphertexts)
        unknown = set(ciphertexts) - (set(self.peer_keys) - {ctx.index})
        if unknown:
            raise StepAborted(
                AbortReason.INCONSISTENT_SETS,
                f"server delivered shares from {len(unknown)} clients not in U1 among neighbours",
            )
        if not all(isinstance(blob, bytes) for blob in ciphertexts.values()):
            raise StepAborted(AbortReason.MALFORMED, "share ciphertexts must be bytes")
        check_count(ctx, len(ciphertexts) + 1, "neighbours (with itself) sent shares")
        masks: list[tuple[bytes, bool]] = [(self_mask_key(self.seed, ctx.sid, ctx.index), False)]
        for v in sorted(ciphertexts):
            try:
                key = pair_mask_key(
                    self.mask_keys, self.peer_keys[v].mask_public, ctx.sid, ctx.index, v
                )
            except CryptoError:
                raise StepAborted(
                    AbortReason.INVALID_KEY, f"key agreement with client {v} failed"
                ) from None
            # The smaller index adds the pairwise mask and the larger subtracts it.
            masks.append((key, v < ctx.index))
        masked = self.data.copy()
        MaskPRG(ctx.config.bits).add_many(masked, masks)
        return self._following(ciphertexts), MaskedInput(ctx.sid, ctx.index, masked)

    def _following(self, ciphertexts: dict[int, bytes]) -> State:
        return AwaitUnmask(self.ctx, self.own_shares, self.share_keys, ciphertexts, self.graph)


@dataclass(frozen=True, slots=True, eq=False)
class AwaitSharesSigned(AwaitShares):
    """Malicious mode: as :class:`AwaitShares`, followed by the consistency round (which needs
    the neighbours' round keys, bound into the signed U3)."""

    def _following(self, ciphertexts: dict[int, bytes]) -> State:
        return AwaitConsistency(
            self.ctx, self.own_shares, self.share_keys, ciphertexts, self.graph, self.peer_keys
        )
