"""What the client's round states share: the round context, the graph view, and the refusal.

Nothing here holds a secret of the round; the round's key pairs, seed and shares live in the
state objects (:mod:`.states`) that need them, and go away with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource
from secagg.crypto.prg import ring_mask, word_dtype
from secagg.crypto.shamir import Share
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigError, MalformedMessageError
from secagg.protocol.config import RoundConfig
from secagg.protocol.identity import IdentityRegistry
from secagg.reasons import AbortReason

__all__ = [
    "PEER_FAULTS",
    "ClientContext",
    "HeldShares",
    "RoundGraph",
    "StepAborted",
    "as_ring_vector",
]

# What a handler may raise when the server sent something malformed: the session blames the
# server (abort ``malformed-message``) for these and lets anything else propagate as a bug.
# TypeError .. OverflowError: removed once messages validate on construction (vocab branch).
PEER_FAULTS: tuple[type[Exception], ...] = (
    MalformedMessageError,
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    OverflowError,
)


class StepAborted(Exception):  # noqa: N818 - internal control flow, never escapes the session
    """A handler refuses the server's message: the session aborts with ``reason``.

    ``view`` is a graph the step derived before refusing (the aborted session still shows it).
    """

    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.view: RoundGraph | None = None


@dataclass(frozen=True, slots=True)
class ClientContext:
    """Who this client is in the round and whom it trusts; shared by every live state.

    ``identity`` and ``registry`` are set exactly in malicious mode. ``context_digest`` is the
    client's own view of the round context, the one it signs (never the server's claim).
    """

    config: RoundConfig
    index: int
    sid: bytes
    rng: RandomSource
    identity: SigningKey | None
    registry: IdentityRegistry | None
    context_digest: bytes

    @property
    def threshold(self) -> int:
        return self.config.threshold


@dataclass(frozen=True, slots=True)
class RoundGraph:
    """This client's view of the neighbour graph: the seed and its own neighbours (public)."""

    seed: bytes
    neighbours: frozenset[int]


@dataclass(frozen=True, slots=True)
class HeldShares:
    """The two shares a holder keeps of one dealer (secret)."""

    key_share: Share  # share of the dealer's s_sk
    seed_share: Share  # share of the dealer's b


def as_ring_vector(data: npt.ArrayLike, config: RoundConfig) -> npt.NDArray[np.unsignedinteger]:
    """Validate the client's input and return it as ring words (a private copy)."""
    arr = np.asarray(data)
    if arr.ndim != 1 or arr.shape[0] != config.dim:
        raise ConfigError(
            f"input must be a 1-D vector of length {config.dim}, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise ConfigError(f"input must hold integers (encode floats first), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or int(arr.max()) > ring_mask(config.bits)):
        raise ConfigError(f"input values must lie in 0..2^{config.bits}-1")
    return np.array(arr, dtype=word_dtype(config.bits), copy=True)
