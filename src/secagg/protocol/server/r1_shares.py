"""Round 1 on the server: collect each client's encrypted shares for its neighbours in U1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from secagg.crypto import aead
from secagg.protocol.derive import SHARE_PLAINTEXT_BYTES
from secagg.protocol.messages import (
    ClientMessage,
    EncryptedShares,
    PublicKeys,
    Round,
    SharesDelivery,
)
from secagg.protocol.server.base import Drop, Outbox, RoundContext, ServerState, Transition
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import DropReason

if TYPE_CHECKING:
    from secagg.protocol.server.r2_masked import CollectMasked

__all__ = ["CIPHERTEXT_BYTES", "CollectShares"]

CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + aead.OVERHEAD


class CollectShares(ServerState):
    """Holds U1's keys (for later rounds), U1, and the ciphertexts until they are forwarded.

    ``then`` is the class of the masked-input step that follows: which one is what makes a
    round semi-honest or malicious from here on.
    """

    phase = ServerPhase.COLLECT_SHARES
    collecting = Round.SHARE_KEYS
    accepts = EncryptedShares

    def __init__(
        self,
        ctx: RoundContext,
        keys: dict[int, PublicKeys],
        u1: frozenset[int],
        *,
        then: type[CollectMasked],
    ) -> None:
        super().__init__(ctx)
        self.keys = keys
        self.u1 = u1
        self.then = then
        self.ciphertexts: dict[int, dict[int, bytes]] = {}

    def accept(self, msg: ClientMessage) -> ServerState:
        assert isinstance(msg, EncryptedShares)
        expected = self.ctx.closed(msg.sender, self.u1) - {msg.sender}
        got = set(msg.ciphertexts)
        if got != expected:
            raise Drop(
                DropReason.BAD_SHARES,
                f"ciphertexts for {len(got)} recipients; "
                f"expected its {len(expected)} neighbours in U1",
            )
        for blob in msg.ciphertexts.values():
            if not isinstance(blob, bytes) or len(blob) != CIPHERTEXT_BYTES:
                raise Drop(DropReason.WRONG_LENGTH, f"ciphertexts must be {CIPHERTEXT_BYTES} bytes")
        self.ciphertexts[msg.sender] = dict(msg.ciphertexts)
        return self

    def end(self) -> Transition:
        ctx = self.ctx
        u2 = ctx.settle(ctx.with_round(Round.SHARE_KEYS), "shared keys", Round.SHARE_KEYS)
        # Forwarded, then gone: the server has no further use for them (memory O(D) + O(n)).
        outbox: Outbox = {
            u: SharesDelivery(
                ctx.sid,
                {v: self.ciphertexts[v][u] for v in sorted(ctx.closed(u, u2) - {u})},
            )
            for u in sorted(u2)
        }
        return self.then(ctx, {v: self.keys[v] for v in u2}, u2), outbox
