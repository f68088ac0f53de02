"""Local DP baselines for comparison: each device randomises its own report.

Two frequency oracles over k categories, each device holding one item (Wang et al., "Locally
Differentially Private Protocols for Frequency Estimation", USENIX Security 2017):

- k-ary randomised response (k-RR): report the true item with probability e^eps / (e^eps + k - 1),
  else one of the other k - 1 uniformly.
- optimised unary encoding (OUE), the one-hot scheme behind Apple's count-mean sketch (Apple
  adds hashing into fewer buckets; with a known small domain no hashing is needed): send k
  bits, the item's bit kept at 1 with probability 1/2, every other bit set with probability
  1 / (e^eps + 1).

Both estimators are unbiased; their standard deviation grows with sqrt(n), while the noise of
secure aggregation plus distributed DP does not grow with n. The randomness comes from a
:class:`~secagg.crypto.entropy.RandomSource` like everything else here.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource
from secagg.encoding.quantize import uniform01
from secagg.errors import ConfigError

__all__ = [
    "krr_estimate",
    "krr_stddev",
    "oue_estimate",
    "oue_stddev",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _check(items: npt.ArrayLike, k: int, epsilon: float) -> IntArray:
    if k < 2:
        raise ConfigError(f"local DP needs at least 2 categories, got {k}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon must be finite and > 0, got {epsilon}")
    arr = np.asarray(items, dtype=np.int64)
    if arr.ndim != 1 or (arr.size and (arr.min() < 0 or arr.max() >= k)):
        raise ConfigError(f"items must be a 1-D array of category indices in 0..{k - 1}")
    return arr


def _krr_pq(k: int, epsilon: float) -> tuple[float, float]:
    e = math.exp(epsilon)
    return e / (e + k - 1), 1.0 / (e + k - 1)


def krr_estimate(items: npt.ArrayLike, k: int, epsilon: float, rng: RandomSource) -> FloatArray:
    """Unbiased counts per category from k-RR reports of ``items`` (one index per device)."""
    arr = _check(items, k, epsilon)
    p, q = _krr_pq(k, epsilon)
    n = arr.size
    keep = uniform01(rng, n) < p
    # Another category uniformly: shift by 1..k-1 modulo k.
    shift = 1 + np.minimum((uniform01(rng, n) * (k - 1)).astype(np.int64), k - 2)
    reports = np.where(keep, arr, (arr + shift) % k)
    observed = np.bincount(reports, minlength=k).astype(np.float64)
    return (observed - n * q) / (p - q)


def krr_stddev(n: int, k: int, epsilon: float, counts: FloatArray | None = None) -> FloatArray:
    """Standard deviation of :func:`krr_estimate` per category (true ``counts`` if known)."""
    p, q = _krr_pq(k, epsilon)
    c = np.zeros(k) if counts is None else np.asarray(counts, dtype=np.float64)
    # Each report hits the category with prob p (its owners) or q (everyone else).
    var = (c * p * (1 - p) + (n - c) * q * (1 - q)) / (p - q) ** 2
    return np.sqrt(var)


def oue_estimate(items: npt.ArrayLike, k: int, epsilon: float, rng: RandomSource) -> FloatArray:
    """Unbiased counts per category from OUE reports of ``items`` (one index per device)."""
    arr = _check(items, k, epsilon)
    n = arr.size
    p, q = 0.5, 1.0 / (math.exp(epsilon) + 1.0)
    observed = np.zeros(k)
    # Devices in chunks so memory stays O(chunk * k) for large n.
    chunk = max(1, (1 << 20) // k)
    for start in range(0, n, chunk):
        part = arr[start : start + chunk]
        u = uniform01(rng, part.size * k).reshape(part.size, k)
        bits = u < q
        rows = np.arange(part.size)
        bits[rows, part] = u[rows, part] < p
        observed += bits.sum(axis=0)
    return (observed - n * q) / (p - q)


def oue_stddev(n: int, k: int, epsilon: float, counts: FloatArray | None = None) -> FloatArray:
    """Standard deviation of :func:`oue_estimate` per category."""
    p, q = 0.5, 1.0 / (math.exp(epsilon) + 1.0)
    c = np.zeros(k) if counts is None else np.asarray(counts, dtype=np.float64)
    var = (c * p * (1 - p) + (n - c) * q * (1 - q)) / (p - q) ** 2
    return np.sqrt(var)
