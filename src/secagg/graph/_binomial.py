"""Binomial probabilities in log space, exact to double precision (no scipy needed).

The whole pmf of Binomial(m, p) is built from ln P(X = 0) = m ln(1 - p) and the ratio
P(X = x + 1) / P(X = x) = (m - x) p / ((x + 1)(1 - p)), accumulated in log space; tails are a
reverse ``logaddexp`` accumulation, so nothing is subtracted from 1 and tiny tails keep their
relative precision. The cost is O(m), which the parameter search can afford up to m ~ 10^6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BinomialTails"]


@dataclass(frozen=True, slots=True)
class BinomialTails:
    """ln P(X >= s) and ln P(a <= X <= b) for X ~ Binomial(draws, p)."""

    draws: int
    log_pmf: npt.NDArray[np.float64]  # log_pmf[x] = ln P(X = x), x = 0..draws
    log_tail: npt.NDArray[np.float64]  # log_tail[s] = ln P(X >= s), s = 0..draws

    @classmethod
    def of(cls, draws: int, p: float) -> BinomialTails:
        """The distribution of successes in ``draws`` independent trials of probability p."""
        if draws < 0 or not 0.0 <= p <= 1.0:
            raise ValueError(f"bad binomial parameters m={draws}, p={p}")
        m = draws
        log_pmf = np.full(m + 1, -np.inf)
        if p == 0.0:
            log_pmf[0] = 0.0
        elif p == 1.0:
            log_pmf[m] = 0.0
        else:
            x = np.arange(m, dtype=np.float64)
            log_odds = math.log(p) - math.log1p(-p)
            log_ratio = np.log(m - x) - np.log(x + 1) + log_odds
            log_pmf[0] = m * math.log1p(-p)
            np.cumsum(log_ratio, out=log_pmf[1:])
            log_pmf[1:] += log_pmf[0]
        tail = np.logaddexp.accumulate(log_pmf[::-1])[::-1]
        np.minimum(tail, 0.0, out=tail)
        return cls(m, log_pmf, tail)

    def log_sf(self, s: int) -> float:
        """ln P(X >= s)."""
        if s <= 0:
            return 0.0
        if s > self.draws:
            return -math.inf
        return float(self.log_tail[s])

    def log_range(self, lo: int, hi: int) -> float:
        """ln P(lo <= X <= hi) (``-inf`` for an empty range)."""
        lo, hi = max(lo, 0), min(hi, self.draws)
        if lo > hi:
            return -math.inf
        return min(0.0, float(np.logaddexp.reduce(self.log_pmf[lo : hi + 1])))

    def smallest_below(self, log_q: float) -> int:
        """The smallest s with ln P(X >= s) < log_q (``draws + 1`` if only the empty tail is)."""
        # -log_tail is non-decreasing, so bisect it.
        return int(np.searchsorted(-self.log_tail, -log_q, side="right"))
