"""Binding the query into the round, and the client's refusal to answer another question.

Until the round config carries a spec digest of its own, the query's digest is the round's
``context_digest``: it enters the session id, hence every key derivation, ciphertext and (in
malicious mode) signature, so clients that were shown different queries cannot complete a
round together. :func:`round_digest` is the one place that decides this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from secagg.analytics.query import IntArray, Query
from secagg.crypto.entropy import RandomSource, default_random
from secagg.encoding.dp import SkellamNoise
from secagg.encoding.ring import RingArray, to_ring
from secagg.errors import QueryMismatchError
from secagg.protocol.config import RoundConfig

__all__ = ["Contributor", "round_digest"]


def round_digest(query: Query) -> bytes:
    """The 32 bytes a round answering ``query`` binds (today: its ``context_digest``)."""
    return query.digest()


class Contributor:
    """A client configured with one query; it contributes to that query and no other."""

    def __init__(self, query: Query, rng: RandomSource | None = None) -> None:
        self.query = query
        self._rng = rng or default_random()

    def check(self, shown: Query | RoundConfig) -> None:
        """Raise :class:`QueryMismatchError` unless ``shown`` (a query, or a round's config)
        is bound to the configured query."""
        digest = round_digest(shown) if isinstance(shown, Query) else shown.context_digest
        expected = round_digest(self.query)
        if digest != expected:
            raise QueryMismatchError(expected.hex(), digest.hex())

    def vector(
        self,
        values: Sequence[Any],
        shown: Query | RoundConfig,
        *,
        bits: int,
        noise: SkellamNoise | None = None,
    ) -> RingArray:
        """The ring vector to submit: capped contributions plus this client's noise share."""
        self.check(shown)
        return to_ring(self.raw(values, noise=noise), bits)

    def raw(self, values: Sequence[Any], *, noise: SkellamNoise | None = None) -> IntArray:
        """The signed integer vector before reduction mod 2^b."""
        vector = self.query.encode(values, self._rng)
        if noise is not None and noise.mu > 0:
            vector = vector + noise.sample(vector.size, self._rng)
        return np.asarray(vector, dtype=np.int64)
