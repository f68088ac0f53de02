"""Round 2 on the server: add each masked input into one running sum as it arrives."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from secagg.crypto.ring import ring_mask, word_dtype
from secagg.protocol.messages import (
    ClientMessage,
    ConsistencyRequest,
    MaskedInput,
    PublicKeys,
    Round,
    ServerMessage,
    UnmaskRequest,
)
from secagg.protocol.server.base import Drop, Outbox, RoundContext, ServerState, Transition
from secagg.protocol.server.r3_consistency import CollectSignatures
from secagg.protocol.server.r4_unmask import CollectUnmask
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import DropReason

__all__ = ["CollectMasked", "CollectMaskedThenSign"]


class CollectMasked(ServerState):
    """Semi-honest round 2: U2's keys, U2, and the running sum of the masked inputs (U3).

    Membership of U3 is permanent, since the sum cannot give an input back; a later drop only
    stops using the client's messages.
    """

    phase = ServerPhase.COLLECT_MASKED
    collecting = Round.MASKED_INPUT
    accepts = MaskedInput

    def __init__(self, ctx: RoundContext, keys: dict[int, PublicKeys], u2: frozenset[int]) -> None:
        super().__init__(ctx)
        self.keys = keys
        self.u2 = u2
        self.masked: set[int] = set()
        # Allocated by the first masked input that is accepted, never before: a round aborted
        # earlier (e.g. joiners that go silent) costs no O(D) memory.
        self.sum: npt.NDArray[np.unsignedinteger] | None = None

    def accept(self, msg: ClientMessage) -> ServerState:
        assert isinstance(msg, MaskedInput)
        config = self.ctx.config
        vector = msg.vector
        if not isinstance(vector, np.ndarray) or vector.ndim != 1:
            raise Drop(DropReason.MALFORMED, "masked input must be a 1-D array")
        if vector.shape[0] != config.dim:
            raise Drop(
                DropReason.WRONG_LENGTH,
                f"masked input has {vector.shape[0]} words; expected {config.dim}",
            )
        dtype = np.dtype(word_dtype(config.bits))
        if vector.dtype != dtype:
            raise Drop(DropReason.MALFORMED, f"masked input dtype {vector.dtype}; expected {dtype}")
        if config.bits not in (32, 64) and int(vector.max()) > ring_mask(config.bits):
            raise Drop(DropReason.MALFORMED, f"masked input words exceed {config.bits} bits")
        if self.sum is None:
            self.sum = np.zeros(config.dim, dtype=dtype)
        np.add(self.sum, vector, out=self.sum)
        self.masked.add(msg.sender)
        return self

    def end(self) -> Transition:
        self.ctx.require_at_least(len(self.masked), "clients sent masked input")
        assert self.sum is not None  # at least t >= 1 inputs were added
        survivors = tuple(sorted(self.masked))
        following, request = self._next(survivors, self.sum)
        outbox: Outbox = dict.fromkeys(sorted(self.ctx.active() & self.masked), request)
        return following, outbox

    def _next(
        self, survivors: tuple[int, ...], total: npt.NDArray[np.unsignedinteger]
    ) -> tuple[ServerState, ServerMessage]:
        """The state after this one, and the one request every reachable survivor gets."""
        mask_publics = {v: k.mask_public for v, k in self.keys.items()}
        following = CollectUnmask(self.ctx, mask_publics, self.u2, survivors, total)
        return following, UnmaskRequest(self.ctx.sid, survivors)


class CollectMaskedThenSign(CollectMasked):
    """Malicious round 2: the same, but U3 goes to the consistency check before unmasking."""

    def _next(
        self, survivors: tuple[int, ...], total: npt.NDArray[np.unsignedinteger]
    ) -> tuple[ServerState, ServerMessage]:
        following = CollectSignatures(self.ctx, self.keys, self.u2, survivors, total)
        return following, ConsistencyRequest(self.ctx.sid, survivors)
