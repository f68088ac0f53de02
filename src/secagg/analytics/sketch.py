"""Open domains: a count sketch over keyed hashes of the items (heavy hitters).

Each client hashes each of its items (at most ``max_contributions`` distinct ones) into one
bucket per row with a random sign: row r of its vector gets s_r(x) at column h_r(x), where
(h_r, s_r) come from HMAC-SHA256 keyed with the query's public ``seed`` over (r, item). The
summed sketch C estimates the count of any item x as median_r s_r(x) C[r, h_r(x)] (Charikar,
Chen, Farach-Colton 2002), so the analyst decodes candidates without knowing the items in
advance. A fresh seed per query keeps a client's collisions from being predictable across
queries.

Error bound (``error_bound``): in one row the other items add a zero-mean error of variance
at most F2 / w (F2 = sum of squared counts, w = width) and DP noise adds its variance V; by
Chebyshev the row is off by more than k * sqrt(F2 / w + V) with probability at most 1 / k^2,
and the median of d rows only when at least half of them are, a binomial tail. F2 is unknown
to the server; it is estimated from the sketch itself (the median over rows of the row's sum
of squares, minus the noise's share), so the bound is an estimate, not a certificate.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from secagg.analytics.caps import cap_counts
from secagg.analytics.query import IntArray, Label, Query, check_positive_int
from secagg.crypto.entropy import RandomSource
from secagg.errors import ConfigError

__all__ = ["SEED_BYTES", "CountSketch", "median_failure_probability"]

SEED_BYTES = 16
_MAX_CELLS = 1 << 26


def median_failure_probability(depth: int, row_failure: float) -> float:
    """P(at least half of ``depth`` independent rows fail), each with ``row_failure``."""
    need = math.ceil(depth / 2)
    p = min(max(row_failure, 0.0), 1.0)
    return sum(math.comb(depth, j) * p**j * (1 - p) ** (depth - j) for j in range(need, depth + 1))


class CountSketch(Query):
    """Counts of items from an open domain, decoded for ``candidates`` (strings).

    ``seed`` is public (hex, 16 bytes): pick a fresh one per query, e.g. ``secrets.token_hex``.
    ``depth`` should be odd so the median is one row's value.
    """

    type_name = "count_sketch"

    def __init__(
        self,
        width: int,
        depth: int,
        seed: str,
        candidates: Sequence[str] = (),
        max_contributions: int = 1,
    ) -> None:
        self.width = check_positive_int("width", width)
        self.depth = check_positive_int("depth", depth)
        if self.width * self.depth > _MAX_CELLS:
            raise ConfigError(f"width * depth must be at most {_MAX_CELLS}")
        try:
            key = bytes.fromhex(seed) if isinstance(seed, str) else b""
        except ValueError:
            key = b""
        if len(key) != SEED_BYTES:
            raise ConfigError(f"seed must be {SEED_BYTES} bytes as hex, got {seed!r}")
        self.seed = key.hex()
        self._key = key
        if isinstance(candidates, str) or not isinstance(candidates, Sequence):
            raise ConfigError("candidates must be a list of strings")
        if any(not isinstance(c, str) for c in candidates):
            raise ConfigError("candidates must be strings")
        if len(set(candidates)) != len(candidates):
            raise ConfigError("candidates lists an item twice")
        self.candidates = tuple(candidates)
        self.max_contributions = check_positive_int("max_contributions", max_contributions)

    @property
    def dim(self) -> int:
        return self.width * self.depth

    @property
    def labels(self) -> tuple[Label, ...]:
        return self.candidates

    def coordinate_bounds(self) -> tuple[int, int]:
        return -self.max_contributions, self.max_contributions

    @property
    def l1_sensitivity(self) -> float:
        return float(self.max_contributions * self.depth)

    @property
    def l2_sensitivity(self) -> float:
        # Worst case: all of a client's items share a bucket and sign in every row.
        return self.max_contributions * math.sqrt(self.depth)

    def locate(self, item: str) -> tuple[np.ndarray[Any, np.dtype[np.int64]], IntArray]:
        """(flat index per row, sign per row) of ``item``."""
        data = item.encode("utf-8")
        cells = np.empty(self.depth, dtype=np.int64)
        signs = np.empty(self.depth, dtype=np.int64)
        for r in range(self.depth):
            h = hmac.new(self._key, r.to_bytes(4, "big") + data, hashlib.sha256).digest()
            cells[r] = r * self.width + int.from_bytes(h[:8], "big") % self.width
            signs[r] = 1 if h[8] & 1 else -1
        return cells, signs

    def encode(self, values: Sequence[Any], rng: RandomSource | None = None) -> IntArray:
        """The client's distinct string items (at most ``max_contributions``), sketched."""
        keys = (v if isinstance(v, str) else None for v in values)
        vector = np.zeros(self.dim, dtype=np.int64)
        for item in cap_counts(keys, self.max_contributions, 1):
            assert isinstance(item, str)
            cells, signs = self.locate(item)
            np.add.at(vector, cells, signs)
        return vector

    def estimate(self, totals: IntArray, items: Sequence[str]) -> dict[str, float]:
        """The sketch's estimate of each item's count."""
        flat = np.asarray(totals)
        out: dict[str, float] = {}
        for item in items:
            cells, signs = self.locate(item)
            out[item] = float(np.median(signs * flat[cells]))
        return out

    def decode(self, totals: IntArray) -> dict[Label, float]:
        counts: dict[Label, float] = {}
        counts.update(self.estimate(totals, self.candidates))
        return counts

    def error_bound(
        self, totals: IntArray, noise_variance: float = 0.0, k: float = 2.0
    ) -> tuple[float, float]:
        """(bound, probability that one item's estimate is off by more than the bound).

        See the module docstring; F2 is estimated from the sketch.
        """
        rows = np.asarray(totals, dtype=np.float64).reshape(self.depth, self.width)
        f2 = max(float(np.median((rows**2).sum(axis=1))) - self.width * noise_variance, 0.0)
        bound = k * math.sqrt(f2 / self.width + noise_variance)
        return bound, median_failure_probability(self.depth, 1.0 / (k * k))

    def answer(
        self, counts: Mapping[Label, float], totals: IntArray, noise_variance: float = 0.0
    ) -> dict[str, float]:
        bound, failure = self.error_bound(totals, noise_variance)
        return {"error_bound": bound, "failure_probability": failure}

    def params(self) -> dict[str, Any]:
        return {
            "candidates": list(self.candidates),
            "depth": self.depth,
            "max_contributions": self.max_contributions,
            "seed": self.seed,
            "width": self.width,
        }
