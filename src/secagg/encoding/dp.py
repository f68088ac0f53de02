"""Distributed differential privacy: per-client Skellam noise.

Each client adds, per value coordinate, Poisson(mu) - Poisson(mu) in quantized units (variance
2 mu). Sums of independent Skellam variables are Skellam, so the aggregate of n clients is
exactly Skellam(n mu) with variance 2 n mu (Agarwal, Kairouz, Liu, NeurIPS 2021). The target
is stated for the aggregate: :class:`DPConfig` ``noise_stddev`` in float units of the decoded
sum, guaranteed once at least ``min_clients`` clients are included (fewer survivors carry less
noise; the decoder reports the noise actually present).

Sampling is inversion of a Poisson CDF table with uniforms from a cryptographically secure
:class:`~secagg.crypto.entropy.RandomSource`, vectorized with ``searchsorted``. It is exact up
to the 2^-53 resolution of the uniforms and a table truncated where the tail is below 2^-64:
a total-variation distance of about 2^-52 per sample, not a bit-exact sampler.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource
from secagg.encoding.quantize import uniform01
from secagg.errors import ConfigError

__all__ = [
    "MAX_POISSON_TABLE",
    "DPConfig",
    "SkellamNoise",
    "calibrate_skellam",
    "sample_poisson",
    "skellam_tail_bound",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Largest CDF table the sampler builds (about 7e11 for mu); bigger means absurd quant_bits.
MAX_POISSON_TABLE = 1 << 24
#: The Poisson table covers all but 2^-TABLE_TAIL_LOG2 of the mass on each side.
TABLE_TAIL_LOG2 = 64


@dataclass(frozen=True)
class DPConfig:
    """Target distributed-DP noise for one round.

    ``noise_stddev``: standard deviation of the noise in the decoded sum, in the same float
    units as the inputs (for a weighted spec: units of weight * value). With L2 clipping c and
    noise multiplier z this is typically z * c. ``min_clients``: the fewest included clients for
    which the target holds; each client adds variance target^2 / min_clients.
    ``wrap_log2``: the bit width leaves headroom so that the aggregate noise exceeds it with
    probability at most 2^-wrap_log2 per coordinate.

    Only the value coordinates are noised: the extra coordinates (total weight, clipping
    counts) are exact, so they are not covered by this guarantee; leave ``weighted`` and
    ``report_clipping`` off when they must be private too.
    """

    noise_stddev: float
    min_clients: int = 1
    mechanism: Literal["skellam"] = "skellam"
    wrap_log2: int = 64

    def __post_init__(self) -> None:
        if not (
            isinstance(self.noise_stddev, int | float)
            and math.isfinite(self.noise_stddev)
            and self.noise_stddev > 0
        ):
            raise ConfigError(f"noise_stddev must be finite and > 0, got {self.noise_stddev!r}")
        if isinstance(self.min_clients, bool) or not isinstance(self.min_clients, int):
            raise ConfigError("min_clients must be an integer")
        if self.min_clients < 1:
            raise ConfigError(f"min_clients must be >= 1, got {self.min_clients}")
        if self.mechanism != "skellam":
            raise ConfigError(f"mechanism must be 'skellam', got {self.mechanism!r}")
        if (
            isinstance(self.wrap_log2, bool)
            or not isinstance(self.wrap_log2, int)
            or not (1 <= self.wrap_log2 <= 256)
        ):
            raise ConfigError(f"wrap_log2 must be an integer in 1..256, got {self.wrap_log2!r}")


@dataclass(frozen=True)
class SkellamNoise:
    """Per-client noise Poisson(mu) - Poisson(mu) per coordinate, in quantized units."""

    mu: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mu) and self.mu >= 0):
            raise ConfigError(f"Skellam mu must be finite and >= 0, got {self.mu}")
        _poisson_table(self.mu)  # refuse an unsamplable mu now, not at the first encode

    @property
    def variance(self) -> float:
        """Per-client variance, 2 mu."""
        return 2.0 * self.mu

    def aggregate_stddev(self, n_clients: int) -> float:
        """Standard deviation of the sum of n clients' noise (quantized units)."""
        return math.sqrt(self.variance * n_clients)

    def headroom(self, n_clients: int, log2_prob: int) -> int:
        """a with P(|sum of n clients' noise| >= a) <= 2^-log2_prob (Chernoff bound)."""
        return skellam_tail_bound(self.mu * n_clients, log2_prob)

    def sample(self, size: int, rng: RandomSource) -> IntArray:
        """``size`` independent Skellam(mu) integers."""
        both = sample_poisson(self.mu, 2 * size, rng)
        return both[:size] - both[size:]


def calibrate_skellam(dp: DPConfig, scale: float) -> SkellamNoise:
    """Per-client noise giving the aggregate of ``dp.min_clients`` clients ``dp.noise_stddev``.

    ``scale`` converts float units to quantized units (the value quantizer's scale).
    """
    sigma = dp.noise_stddev * scale
    return SkellamNoise(mu=sigma * sigma / dp.min_clients / 2.0)


def sample_poisson(mu: float, size: int, rng: RandomSource) -> IntArray:
    """``size`` independent Poisson(mu) integers by CDF inversion (vectorized)."""
    if mu == 0.0 or size == 0:
        return np.zeros(size, dtype=np.int64)
    low, cdf = _poisson_table(mu)
    return np.searchsorted(cdf, uniform01(rng, size), side="right").astype(np.int64) + low


@functools.lru_cache(maxsize=16)
def _poisson_table(mu: float) -> tuple[int, FloatArray]:
    """(k_low, CDF over k_low..k_high) covering all but 2^-64 of each tail of Poisson(mu)."""
    if mu == 0.0:
        return 0, np.ones(1)
    t = TABLE_TAIL_LOG2 * math.log(2.0)
    # Chernoff/Bernstein tails: P(X <= mu - a) <= exp(-a^2 / 2mu),
    # P(X >= mu + a) <= exp(-a^2 / (2 (mu + a/3))).
    below = math.sqrt(2.0 * t * mu)
    above = t / 3.0 + math.sqrt(t * t / 9.0 + 2.0 * t * mu)
    k_low = max(0, math.floor(mu - below))
    k_high = math.ceil(mu + above) + 1
    if k_high - k_low + 1 > MAX_POISSON_TABLE:
        raise ConfigError(
            f"Poisson noise with mu={mu:.4g} needs a table of {k_high - k_low + 1} entries, over "
            f"the limit {MAX_POISSON_TABLE}; lower quant_bits or the noise"
        )
    ks = np.arange(k_low, k_high + 1, dtype=np.float64)
    # log pmf relative to the mode via cumulative sums of log(mu / k): no vectorized lgamma
    # is needed and the values stay well scaled far into both tails.
    mode = min(max(math.floor(mu), k_low), k_high)
    steps = math.log(mu) - np.log(np.maximum(ks, 1.0))  # log pmf(k) - log pmf(k-1), k >= 1
    logp = np.zeros_like(ks)
    i = mode - k_low
    logp[i + 1 :] = np.cumsum(steps[i + 1 :])
    logp[:i] = -np.cumsum(steps[i:0:-1])[::-1]
    pmf = np.exp(logp)
    cdf = np.cumsum(pmf)
    cdf /= cdf[-1]
    cdf.flags.writeable = False
    return k_low, cdf


def skellam_tail_bound(mu_total: float, log2_prob: int) -> int:
    """Smallest integer a with the Chernoff bound on P(|Skellam(mu_total)| >= a) <= 2^-log2_prob.

    For X = P1 - P2, Pi ~ Poisson(m): E[e^{tX}] = exp(2m (cosh t - 1)), so
    P(|X| >= a) <= 2 exp(2m (cosh t - 1) - t a), minimized at t = asinh(a / 2m).
    """
    if mu_total < 0 or not math.isfinite(mu_total):
        raise ConfigError(f"mu_total must be finite and >= 0, got {mu_total}")
    if mu_total == 0.0:
        return 0
    target = -log2_prob * math.log(2.0) - math.log(2.0)

    def log_bound(a: float) -> float:
        y = a / (2.0 * mu_total)
        # sqrt(1 + y^2) - 1 without cancellation for small y
        return 2.0 * mu_total * (y * y / (math.sqrt(1.0 + y * y) + 1.0)) - a * math.asinh(y)

    hi = 1.0
    while log_bound(hi) > target:
        hi *= 2.0
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if log_bound(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 0.5:
            break
    return math.ceil(hi)
