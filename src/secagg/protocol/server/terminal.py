"""The server's terminal states. Neither holds a client secret (shares, ciphertexts, inputs)."""

from __future__ import annotations

from secagg.protocol.server.base import RoundContext, ServerState
from secagg.protocol.server.state import AggregationResult, ServerPhase
from secagg.reasons import AbortReason

__all__ = ["Aborted", "Done"]


class Done(ServerState):
    """The round produced its sum; only the result is kept."""

    phase = ServerPhase.DONE

    def __init__(self, ctx: RoundContext, result: AggregationResult) -> None:
        super().__init__(ctx)
        self.result = result


class Aborted(ServerState):
    """The round ended without a result. The running sum (masked inputs only) is let go, so
    nothing partial is ever used; it is never written to (that would touch every page)."""

    phase = ServerPhase.ABORTED

    def __init__(self, ctx: RoundContext, reason: AbortReason, detail: str) -> None:
        super().__init__(ctx)
        self.reason = reason
        self.detail = detail
