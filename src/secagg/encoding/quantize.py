"""Clipping and unbiased stochastic quantization of float vectors.

A :class:`Quantizer` maps the interval [low, high] affinely onto the integers [0, 2^q]
(both ends included: 2^q + 1 levels, so 0.0 lands exactly on the integer ``zero_point`` for the
symmetric range [-c, c]). A value u in quantized units becomes floor(u) + 1 with probability
frac(u), else floor(u): unbiased, and never more than one quantum away. Decoding the sum of n
clients subtracts n * zero_point in integers and divides by the scale, so the sum's error per
coordinate is below n quanta (see :meth:`Quantizer.sum_error_bound`).

Randomness comes from a :class:`~secagg.crypto.entropy.RandomSource`: uniforms are 53-bit
fractions built from its bytes, never from ``random`` or a NumPy generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource
from secagg.errors import ConfigError, EncodingError

__all__ = [
    "MAX_QUANT_BITS",
    "ClipMode",
    "Quantizer",
    "clip_values",
    "stochastic_round",
    "uniform01",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ClipMode = Literal["coordinate", "l2"]

#: Beyond ~48 bits float64 rounding, not quantization, would dominate the error.
MAX_QUANT_BITS = 48


def check_quant_bits(quant_bits: int) -> int:
    """Validate q (1 <= q <= MAX_QUANT_BITS) and return it."""
    if isinstance(quant_bits, bool) or not isinstance(quant_bits, int | np.integer):
        raise ConfigError(f"quant_bits must be an integer, got {type(quant_bits).__name__}")
    if not 1 <= quant_bits <= MAX_QUANT_BITS:
        raise ConfigError(f"quant_bits must be in 1..{MAX_QUANT_BITS}, got {quant_bits}")
    return int(quant_bits)


def uniform01(rng: RandomSource, n: int) -> FloatArray:
    """``n`` independent uniforms on [0, 1), each a 53-bit fraction of 8 bytes from ``rng``."""
    words = np.frombuffer(rng.random_bytes(8 * n), dtype="<u8")
    return (words >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def stochastic_round(u: FloatArray, rng: RandomSource) -> IntArray:
    """Round each non-negative ``u`` up with probability frac(u), else down (E[result] = u)."""
    u = np.asarray(u, dtype=np.float64)
    down = np.floor(u)
    frac = u - down  # exact in float64
    up = uniform01(rng, u.size).reshape(u.shape) < frac
    return down.astype(np.int64) + up


def clip_values(x: FloatArray, clip: float, mode: ClipMode) -> tuple[FloatArray, int]:
    """Clip ``x`` to [-clip, clip] per coordinate or to L2 norm ``clip``.

    Returns the clipped copy and the number of coordinates whose value clipping changed
    (in L2 mode: every non-zero coordinate of a vector whose norm exceeded ``clip``). NaN is
    refused; +-inf is clipped in coordinate mode and refused in L2 mode (its norm is undefined).
    """
    x = np.asarray(x, dtype=np.float64)
    nans = int(np.count_nonzero(np.isnan(x)))
    if nans:
        raise EncodingError(f"input has {nans} NaN coordinate(s) of {x.size}; cannot encode")
    if mode == "coordinate":
        out = np.clip(x, -clip, clip)
        return out, int(np.count_nonzero(out != x))
    if mode == "l2":
        infs = int(np.count_nonzero(np.isinf(x)))
        if infs:
            raise EncodingError(f"input has {infs} infinite coordinate(s); L2 norm undefined")
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak == 0.0:
            return x.copy(), 0
        # Scale by the largest magnitude first so that squares of huge finite values cannot
        # overflow; norm = peak * relative may still exceed the float range (1e308 * 6), so
        # compare and scale with the two factors and the direction of x survives.
        unit = x / peak
        relative = float(np.linalg.norm(unit))
        if relative <= clip / peak:
            return x.copy(), 0
        # x_j * clip / norm is within [-clip, clip] mathematically; np.clip removes the last ulp.
        unit *= clip / relative
        out = np.clip(unit, -clip, clip, out=unit)
        return out, int(np.count_nonzero(x))
    raise ConfigError(f"clip_mode must be 'coordinate' or 'l2', got {mode!r}")


@dataclass(frozen=True)
class Quantizer:
    """Affine map of [low, high] onto integers [0, 2^q] with stochastic rounding.

    ``zero_point`` is the integer that 0.0 maps to (2^(q-1) for [-c, c], 0 for [0, w]); it is
    an integer so the decoder removes n * zero_point exactly.
    """

    low: float
    high: float
    quant_bits: int

    def __post_init__(self) -> None:
        check_quant_bits(self.quant_bits)
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(
                f"quantizer range must be finite with low < high, got [{self.low}, {self.high}]"
            )
        if self.low not in (0.0, -self.high):
            raise ConfigError("quantizer range must be [-c, c] or [0, w]")
        scale = self.scale
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(1.0 / scale)):
            raise ConfigError(
                f"quantizer range [{self.low}, {self.high}] is too wide or too narrow for float64"
            )

    @classmethod
    def symmetric(cls, clip: float, quant_bits: int) -> Quantizer:
        """Quantizer for [-clip, clip]: scale 2^q / (2 clip), zero point 2^(q-1)."""
        return cls(-float(clip), float(clip), quant_bits)

    @classmethod
    def nonnegative(cls, high: float, quant_bits: int) -> Quantizer:
        """Quantizer for [0, high]: scale 2^q / high, zero point 0."""
        return cls(0.0, float(high), quant_bits)

    @property
    def max_value(self) -> int:
        """Largest quantized value, 2^q."""
        return 1 << self.quant_bits

    @property
    def scale(self) -> float:
        """Quanta per float unit: 2^q / (high - low)."""
        return self.max_value / (self.high - self.low)

    @property
    def zero_point(self) -> int:
        """The quantized value of 0.0."""
        return 0 if self.low == 0.0 else self.max_value // 2

    def quantize(self, x: FloatArray, rng: RandomSource) -> IntArray:
        """Integers in [0, 2^q] whose expectation is (x - low) * scale; ``x`` must lie in range."""
        u = (np.asarray(x, dtype=np.float64) - self.low) * self.scale
        # The float product can overshoot 2^q by an ulp when scale is not a power of two.
        np.clip(u, 0.0, float(self.max_value), out=u)
        return stochastic_round(u, rng)

    def dequantize(self, centred: IntArray) -> FloatArray:
        """Float values of quantized sums from which n * zero_point was already removed."""
        return np.asarray(centred, dtype=np.int64).astype(np.float64) / self.scale

    def sum_error_bound(self, n: int) -> float:
        """Per-coordinate bound on |decoded sum - sum of inputs| for n clients (no DP noise).

        Each client's rounding moves a coordinate by less than one quantum (1 / scale). The
        factor 1 + 2^(q-50) covers float64 rounding in encoding and decoding, which is at most
        1.5 * 2^(q-52) quanta per client.
        """
        return n / self.scale * (1.0 + 2.0 ** (self.quant_bits - 50))
