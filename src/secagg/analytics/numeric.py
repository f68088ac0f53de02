"""Counts, bounded sums and means, and quantiles via a bucketed histogram."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from secagg.analytics.query import (
    IntArray,
    Label,
    Query,
    check_bounds,
    check_finite,
    check_positive_int,
)
from secagg.crypto.entropy import RandomSource
from secagg.encoding.quantize import uniform01
from secagg.errors import ConfigError, EncodingError

__all__ = ["DEFAULT_LEVELS", "Count", "Mean", "Quantiles", "Sum"]

#: Default number of quantization steps across the bounds of Sum and Mean.
DEFAULT_LEVELS = 1024


def _numbers(values: Sequence[Any], limit: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The client's first ``limit`` values as floats; non-finite or non-numeric is an error."""
    kept = list(values)[:limit]
    for v in kept:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise EncodingError(f"values must be finite numbers, got {type(v).__name__}")
    return np.asarray(kept, dtype=np.float64)


class _CappedCounts(Query):
    """Counts of at most ``max_contributions`` values per client: a client adds at most that
    much to one coordinate, and that much in all."""

    max_contributions: int

    def coordinate_bounds(self) -> tuple[int, int]:
        return 0, self.max_contributions

    @property
    def l1_sensitivity(self) -> float:
        return float(self.max_contributions)

    @property
    def l2_sensitivity(self) -> float:
        return float(self.max_contributions)


class Count(_CappedCounts):
    """How many values the clients reported, each client counting at most ``max_contributions``.

    With the default cap of 1 this is the number of clients that reported anything.
    """

    type_name = "count"

    def __init__(self, max_contributions: int = 1) -> None:
        self.max_contributions = check_positive_int("max_contributions", max_contributions)

    dim = 1
    labels: tuple[Label, ...] = ("count",)

    def encode(self, values: Sequence[Any], rng: RandomSource | None = None) -> IntArray:
        return np.array([min(len(values), self.max_contributions)], dtype=np.int64)

    def decode(self, totals: IntArray) -> dict[Label, float]:
        return {"count": float(totals[0])}

    def params(self) -> dict[str, Any]:
        return {"max_contributions": self.max_contributions}


class Sum(Query):
    """The sum of bounded numbers: each value clipped to ``bounds``, at most
    ``max_contributions`` values per client, quantized to multiples of ``step`` with unbiased
    stochastic rounding (default step: the bounds' width / 1024)."""

    type_name = "sum"

    def __init__(
        self,
        bounds: Sequence[float],
        max_contributions: int = 1,
        step: float | None = None,
    ) -> None:
        self.bounds = check_bounds(bounds)
        self.max_contributions = check_positive_int("max_contributions", max_contributions)
        low, high = self.bounds
        self.step = (high - low) / DEFAULT_LEVELS if step is None else check_finite("step", step)
        if self.step <= 0:
            raise ConfigError(f"step must be > 0, got {step!r}")
        self._qlow = math.floor(low / self.step)
        self._qhigh = math.ceil(high / self.step)
        if max(abs(self._qlow), abs(self._qhigh)) * self.max_contributions >= 1 << 52:
            raise ConfigError("bounds / step is too fine: lower the resolution (raise step)")

    dim = 1
    labels: tuple[Label, ...] = ("sum",)

    @property
    def _max_abs(self) -> int:
        return self.max_contributions * max(abs(self._qlow), abs(self._qhigh))

    def coordinate_bounds(self) -> tuple[int, int]:
        m = self.max_contributions
        return min(m * self._qlow, 0), max(m * self._qhigh, 0)

    @property
    def l1_sensitivity(self) -> float:
        return float(self._max_abs)

    @property
    def l2_sensitivity(self) -> float:
        return float(self._max_abs)

    def _quantized_sum(self, values: Sequence[Any], rng: RandomSource) -> int:
        x = np.clip(_numbers(values, self.max_contributions), *self.bounds) / self.step
        down = np.floor(x)
        up = uniform01(rng, x.size) < (x - down)  # E[rounded] = x: unbiased
        rounded = np.clip(down.astype(np.int64) + up, self._qlow, self._qhigh)
        return int(rounded.sum())

    def encode(self, values: Sequence[Any], rng: RandomSource) -> IntArray:
        return np.array([self._quantized_sum(values, rng)], dtype=np.int64)

    def decode(self, totals: IntArray) -> dict[Label, float]:
        return {"sum": float(totals[0]) * self.step}

    def scales(self) -> tuple[float, ...]:
        return (self.step,)

    def params(self) -> dict[str, Any]:
        return {
            "bounds": list(self.bounds),
            "max_contributions": self.max_contributions,
            "step": self.step,
        }


class Mean(Sum):
    """The mean of bounded numbers: a :class:`Sum` and a count in one vector (answer "mean").

    With DP both coordinates get the noise the L2 sensitivity of the pair needs, in units of
    ``step`` for the sum and of 1 for the count: a coarser step (fewer levels) trades
    resolution for a less noisy count.
    """

    type_name = "mean"
    dim = 2
    labels: tuple[Label, ...] = ("sum", "count")

    def coordinate_bounds(self) -> tuple[int, int]:
        low, high = super().coordinate_bounds()
        return low, max(high, self.max_contributions)

    @property
    def l1_sensitivity(self) -> float:
        return float(self._max_abs + self.max_contributions)

    @property
    def l2_sensitivity(self) -> float:
        return math.hypot(self._max_abs, self.max_contributions)

    def encode(self, values: Sequence[Any], rng: RandomSource) -> IntArray:
        count = min(len(values), self.max_contributions)
        return np.array([self._quantized_sum(values, rng), count], dtype=np.int64)

    def decode(self, totals: IntArray) -> dict[Label, float]:
        return {"sum": float(totals[0]) * self.step, "count": float(totals[1])}

    def scales(self) -> tuple[float, ...]:
        return (self.step, 1.0)

    def answer(
        self, counts: Mapping[Label, float], totals: IntArray, noise_variance: float = 0.0
    ) -> dict[str, float]:
        count = counts["count"]
        return {"mean": counts["sum"] / count if count > 0 else math.nan}


class Quantiles(_CappedCounts):
    """Quantiles of bounded numbers from a histogram of ``buckets`` equal-width buckets.

    Each client puts at most ``max_contributions`` values (its first ones) into buckets;
    values outside ``bounds`` land in the end buckets. The answer interpolates linearly inside
    the bucket where the cumulative count crosses each quantile, so it is exact to within one
    bucket width (plus the effect of noise on the counts).
    """

    type_name = "quantiles"

    def __init__(
        self,
        bounds: Sequence[float],
        buckets: int,
        quantiles: Sequence[float] = (0.25, 0.5, 0.75),
        max_contributions: int = 1,
    ) -> None:
        self.bounds = check_bounds(bounds)
        self.buckets = check_positive_int("buckets", buckets)
        self.max_contributions = check_positive_int("max_contributions", max_contributions)
        given: object = quantiles
        if isinstance(given, str) or not isinstance(given, Sequence) or not given:
            raise ConfigError("quantiles must be a non-empty list of numbers in [0, 1]")
        qs = tuple(check_finite("quantile", q) for q in given)
        if any(not 0.0 <= q <= 1.0 for q in qs):
            raise ConfigError(f"quantiles must lie in [0, 1], got {list(qs)}")
        self.quantiles = qs
        low, high = self.bounds
        self.edges = np.linspace(low, high, self.buckets + 1)
        self._labels: tuple[Label, ...] = tuple(
            f"[{self.edges[i]:g}, {self.edges[i + 1]:g})" for i in range(self.buckets)
        )

    @property
    def dim(self) -> int:
        return self.buckets

    @property
    def labels(self) -> tuple[Label, ...]:
        return self._labels

    def encode(self, values: Sequence[Any], rng: RandomSource | None = None) -> IntArray:
        x = _numbers(values, self.max_contributions)
        low, high = self.bounds
        index = np.clip(
            ((x - low) / (high - low) * self.buckets).astype(np.int64), 0, self.buckets - 1
        )
        return np.bincount(index, minlength=self.buckets).astype(np.int64)

    def decode(self, totals: IntArray) -> dict[Label, float]:
        return {label: float(totals[i]) for i, label in enumerate(self.labels)}

    def answer(
        self, counts: Mapping[Label, float], totals: IntArray, noise_variance: float = 0.0
    ) -> dict[str, float]:
        # Noise can make counts negative; a negative count is no mass at all.
        mass = np.maximum(np.array([counts[label] for label in self.labels]), 0.0)
        total = float(mass.sum())
        cumulative = np.cumsum(mass)
        width = (self.bounds[1] - self.bounds[0]) / self.buckets
        out: dict[str, float] = {}
        for q in self.quantiles:
            if total <= 0:
                out[f"q{q:g}"] = math.nan
                continue
            target = q * total
            i = min(int(np.searchsorted(cumulative, target, side="left")), self.buckets - 1)
            before = float(cumulative[i - 1]) if i else 0.0
            inside = (target - before) / float(mass[i]) if mass[i] > 0 else 0.0
            out[f"q{q:g}"] = float(self.bounds[0] + (i + inside) * width)
        return out

    def params(self) -> dict[str, Any]:
        return {
            "bounds": list(self.bounds),
            "buckets": self.buckets,
            "max_contributions": self.max_contributions,
            "quantiles": list(self.quantiles),
        }
