"""Round 4 on the server: collect the shares, rebuild the secrets, take the masks off."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from secagg.crypto.ring import ring_mask
from secagg.crypto.shamir import Share
from secagg.errors import CryptoError, RoundAbortedError
from secagg.protocol.messages import ClientMessage, Round, RoundComplete, UnmaskResponse
from secagg.protocol.server.base import Drop, Outbox, RoundContext, ServerState, Transition
from secagg.protocol.server.state import AggregationResult, ServerPhase
from secagg.protocol.server.terminal import Done
from secagg.protocol.server.unmask import Reconstruction, reconstruct_all, remove_masks
from secagg.reasons import AbortReason, DropReason

__all__ = ["CollectUnmask"]

_ROUND = Round.UNMASKING


class CollectUnmask(ServerState):
    """U2's mask public keys (to check recovered keys), U2, U3, the sum, and the shares."""

    phase = ServerPhase.COLLECT_UNMASK
    collecting = _ROUND
    accepts = UnmaskResponse

    def __init__(
        self,
        ctx: RoundContext,
        mask_publics: dict[int, bytes],
        u2: frozenset[int],
        survivors: tuple[int, ...],
        total: npt.NDArray[np.unsignedinteger],
    ) -> None:
        super().__init__(ctx)
        self.mask_publics = mask_publics
        self.u2 = u2
        self.survivors = survivors
        self.alive = frozenset(survivors)
        self.sum = total
        self.seed_shares: dict[int, dict[int, Share]] = {}
        self.key_shares: dict[int, dict[int, Share]] = {}

    def accept(self, msg: ClientMessage) -> ServerState:
        assert isinstance(msg, UnmaskResponse)
        u = msg.sender
        holders_of = self.ctx.closed(u, self.u2)
        seeds = _shares(u, msg.self_mask_shares, holders_of & self.alive, "self-mask")
        keys = _shares(u, msg.key_shares, holders_of & (self.u2 - self.alive), "mask-key")
        view = self.ctx.view
        for v, share in seeds.items():
            self.seed_shares.setdefault(v, {})[u] = share
            view.seed_shares.setdefault(v, set()).add(u)
        for v, share in keys.items():
            self.key_shares.setdefault(v, {})[u] = share
            view.key_shares.setdefault(v, set()).add(u)
        return self

    def end(self) -> Transition:
        ctx = self.ctx
        observer = ctx.observer
        observer.server_begin(_ROUND, "reconstruct")
        recovered = reconstruct_all(
            {v: self.seed_shares.get(v, {}) for v in self.alive},
            {v: self.key_shares.get(v, {}) for v in self.u2 - self.alive},
            self.mask_publics,
            ctx.threshold,
        )
        observer.server_end(_ROUND, "reconstruct")
        self._blame(recovered)
        observer.server_begin(_ROUND, "remove-masks")
        remove_masks(
            self.sum,
            ctx.config.bits,
            ctx.sid,
            ctx.neighbourhood(),
            self.alive,
            recovered,
            self.mask_publics,
            ctx.expand_masks,
        )
        observer.server_end(_ROUND, "remove-masks")
        bits = ctx.config.bits
        if bits not in (32, 64):
            np.bitwise_and(self.sum, ring_mask(bits), out=self.sum)
        dropped = ctx.dropped()
        result = AggregationResult(
            total=self.sum,
            included=self.survivors,
            dropped={i: d for i, d in dropped.items() if i not in self.alive},
            late=[i for i in dropped if i in self.alive],
            bits=bits,
        )
        complete = RoundComplete(ctx.sid, self.survivors)
        outbox: Outbox = dict.fromkeys(sorted(ctx.active() & self.alive), complete)
        return Done(ctx, result), outbox

    def _blame(self, recovered: Reconstruction) -> None:
        """Drop holders of shares off the polynomial; abort if a secret stays unrecovered."""
        for holder in sorted(recovered.bad_holders):
            self.ctx.drop(
                holder,
                DropReason.INCONSISTENT_SHARES,
                "revealed a share off the polynomial",
                _ROUND,
            )
        if not recovered.failures:
            return
        first = recovered.failures[0]
        reason = (
            AbortReason.TOO_FEW_SHARES
            if first.reason is AbortReason.TOO_FEW_SHARES
            else AbortReason.INCONSISTENT_SHARES
        )
        dealers = sorted({f.dealer for f in recovered.failures})
        raise RoundAbortedError(
            reason.value,
            f"cannot recover the secrets of {len(dealers)} clients "
            f"(first: client {first.dealer}'s {first.kind}: {first.detail}); "
            f"dealers: {dealers[:20]}",
        )


def _shares(
    sender: int, blobs: Mapping[int, bytes], wanted: frozenset[int], kind: str
) -> dict[int, Share]:
    """Decode one kind of share from an unmasking reply; each must be requested and be the
    sender's own evaluation point."""
    out: dict[int, Share] = {}
    for v, blob in blobs.items():
        if v not in wanted:
            raise Drop(DropReason.BAD_SHARES, f"{kind} share for client {v} not requested")
        try:
            share = Share.from_bytes(blob)
        except (CryptoError, TypeError):
            raise Drop(DropReason.BAD_SHARES, f"malformed {kind} share") from None
        if share.x != sender:
            raise Drop(DropReason.BAD_SHARES, "share evaluation point is not the sender's")
        out[v] = share
    return out
