"""Hypergeometric upper tails in log space, exact where they matter (no scipy needed).

Only a window of the support is summed: from ``mean - sqrt(m)`` (below it the tail exceeds
1 - e^-2, far above any failure budget, and is reported as 1) up to ``mean + sqrt(_SPAN * m)``
(beyond it Hoeffding's bound for sampling without replacement, exp(-2u^2/m), is below
e^-2*_SPAN and is added or reported instead). Every value returned is therefore an upper bound
on the true tail, and equals it to double precision whenever the tail is above e^-700.

Inside the window the pmf at the first point comes from ``math.lgamma`` and the rest from the
ratio p(x + 1) / p(x) = (K - x)(m - x) / ((x + 1)(N - K - m + x + 1)) accumulated in log space;
tails are a reverse ``logaddexp`` accumulation, so nothing is subtracted from 1 and tiny tails
keep their relative precision. The window keeps the cost O(sqrt(m)), not O(m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["UpperTails"]

_SPAN = 200  # Hoeffding remainder beyond the window <= e^-400


def _log_comb(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


@dataclass(frozen=True, slots=True)
class UpperTails:
    """Upper bounds on ln P(X >= s) for X ~ Hypergeometric(population N, marked K, draws m)."""

    mean: float
    draws: int
    lo: int  # first point of the window; P(X >= s) is reported as 1 for s <= lo
    hi: int  # largest value X can take
    log_tail: npt.NDArray[np.float64]  # log_tail[i] bounds ln P(X >= lo + i), window only

    @classmethod
    def of(cls, population: int, marked: int, draws: int) -> UpperTails:
        """Tails of the number of marked items among ``draws`` taken without replacement."""
        big_n, big_k, m = population, marked, draws
        if not (0 <= big_k <= big_n and 0 <= m <= big_n):
            raise ValueError(f"bad hypergeometric parameters N={big_n}, K={big_k}, m={m}")
        support_lo = max(0, m - (big_n - big_k))
        hi = min(m, big_k)
        mean = m * big_k / big_n if big_n else 0.0
        root_m = math.sqrt(m)
        lo = max(support_lo, math.floor(mean - root_m))
        top = min(hi, math.ceil(mean + math.sqrt(_SPAN * m)))
        log_p0 = _log_comb(big_k, lo) + _log_comb(big_n - big_k, m - lo) - _log_comb(big_n, m)
        x = np.arange(lo, top, dtype=np.float64)
        # Products are formed in float64: exact below 2^53, far beyond any n used here.
        log_ratio = np.log((big_k - x) * (m - x)) - np.log((x + 1) * (big_n - big_k - m + x + 1))
        log_pmf = np.empty(top - lo + 1, dtype=np.float64)
        log_pmf[0] = log_p0
        np.cumsum(log_ratio, out=log_pmf[1:])
        log_pmf[1:] += log_p0
        tail = np.logaddexp.accumulate(log_pmf[::-1])[::-1]
        if top < hi:
            tail = np.logaddexp(tail, _hoeffding(top + 1, mean, m))
        np.minimum(tail, 0.0, out=tail)
        return cls(mean, m, lo, hi, tail)

    def log_sf(self, s: int) -> float:
        """An upper bound on ln P(X >= s), tight unless P(X >= s) < e^-700."""
        if s <= self.lo:
            return 0.0
        if s > self.hi:
            return -math.inf
        i = s - self.lo
        if i < self.log_tail.size:
            return float(self.log_tail[i])
        return _hoeffding(s, self.mean, self.draws)

    def smallest_below(self, log_q: float) -> int:
        """The smallest s whose tail bound is below e^log_q (log_q must be < -1/2)."""
        # -log_tail is non-decreasing (logaddexp never decreases), so bisect it.
        i = int(np.searchsorted(-self.log_tail, -log_q, side="right"))
        if i < self.log_tail.size or self.lo + i > self.hi:
            return self.lo + i
        # Past the window: invert Hoeffding, then settle the rounding.
        s = max(self.lo + i, math.floor(self.mean + math.sqrt(-log_q * self.draws / 2)))
        while s <= self.hi and self.log_sf(s) >= log_q:
            s += 1
        return s


def _hoeffding(s: int, mean: float, draws: int) -> float:
    """ln of Hoeffding's bound on P(X >= s), valid for s > mean."""
    u = s - mean
    return -2.0 * u * u / draws
