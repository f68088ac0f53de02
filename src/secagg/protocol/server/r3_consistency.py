"""Round 3 on the server (malicious mode): collect signatures over U3."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from secagg.crypto.signing import verify_signature
from secagg.errors import CryptoError
from secagg.protocol.derive import signed_survivors_message
from secagg.protocol.messages import (
    ClientMessage,
    ConsistencySignature,
    PublicKeys,
    Round,
    UnmaskRequest,
)
from secagg.protocol.server.base import Drop, Outbox, RoundContext, ServerState, Transition
from secagg.protocol.server.r4_unmask import CollectUnmask
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import DropReason

__all__ = ["CollectSignatures"]


class CollectSignatures(ServerState):
    """U2's keys (each signature covers the signer's own), U2, U3, the sum, the signatures."""

    phase = ServerPhase.COLLECT_SIGNATURES
    collecting = Round.CONSISTENCY_CHECK
    accepts = ConsistencySignature

    def __init__(
        self,
        ctx: RoundContext,
        keys: dict[int, PublicKeys],
        u2: frozenset[int],
        survivors: tuple[int, ...],
        total: npt.NDArray[np.unsignedinteger],
    ) -> None:
        super().__init__(ctx)
        self.keys = keys
        self.u2 = u2
        self.survivors = survivors
        self.sum = total
        self.signatures: dict[int, bytes] = {}

    def accept(self, msg: ClientMessage) -> ServerState:
        assert isinstance(msg, ConsistencySignature)
        ctx = self.ctx
        assert ctx.registry is not None  # malicious mode: the session requires one
        assert ctx.graph_seed is not None  # derived from the reveals
        identity = ctx.registry.identity_key(msg.sender)
        if identity is None:
            raise Drop(DropReason.UNKNOWN_CLIENT, "sender is not in the identity registry")
        keys = self.keys[msg.sender]
        message = signed_survivors_message(
            ctx.sid,
            ctx.graph_seed,
            ctx.config.context_digest,
            self.survivors,
            keys.enc_public,
            keys.mask_public,
        )
        try:
            verify_signature(identity, msg.signature, message)
        except CryptoError:
            raise Drop(DropReason.BAD_SIGNATURE, "consistency signature") from None
        self.signatures[msg.sender] = msg.signature
        return self

    def end(self) -> Transition:
        ctx = self.ctx
        u4 = ctx.with_round(Round.CONSISTENCY_CHECK)
        ctx.require_at_least(len(u4), "clients signed U3")
        mask_publics = {v: k.mask_public for v, k in self.keys.items()}
        following = CollectUnmask(ctx, mask_publics, self.u2, self.survivors, self.sum)
        # A client counts only signatures from its own closed neighbourhood: send just those.
        outbox: Outbox = {
            u: UnmaskRequest(
                ctx.sid,
                self.survivors,
                {v: self.signatures[v] for v in sorted(ctx.closed(u, u4))},
            )
            for u in sorted(u4)
        }
        return following, outbox
