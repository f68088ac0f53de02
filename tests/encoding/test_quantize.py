"""Clipping, stochastic rounding and the quantizer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding import Quantizer, clip_values, stochastic_round, uniform01
from secagg.errors import ConfigError, EncodingError


def test_uniforms_are_53_bit_fractions_in_unit_interval() -> None:
    u = uniform01(DeterministicRandom(1), 100_000)
    assert u.dtype == np.float64
    assert u.min() >= 0.0
    assert u.max() < 1.0
    assert np.all(u * 2.0**53 == np.floor(u * 2.0**53))
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / u.size)


def test_uniforms_are_reproducible_from_the_seed() -> None:
    a = uniform01(DeterministicRandom(7), 10)
    b = uniform01(DeterministicRandom(7), 10)
    c = uniform01(DeterministicRandom(8), 10)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("frac", [0.001, 0.1, 0.5, 0.77, 0.999])
def test_stochastic_rounding_is_unbiased(frac: float) -> None:
    n = 400_000
    u = np.full(n, 41.0 + frac)
    r = stochastic_round(u, DeterministicRandom(f"unbiased-{frac}"))
    assert set(np.unique(r).tolist()) <= {41, 42}
    # Each sample is 41 + Bernoulli(frac): the mean is within 5 standard errors of u.
    assert abs(r.mean() - u[0]) < 5 * math.sqrt(frac * (1 - frac) / n)


def test_integers_are_never_rounded() -> None:
    u = np.arange(0.0, 1000.0)
    assert np.array_equal(stochastic_round(u, DeterministicRandom(0)), u.astype(np.int64))


def test_quantize_then_dequantize_is_unbiased_for_arbitrary_values() -> None:
    q = Quantizer.symmetric(1.5, 6)
    x = np.repeat(np.array([-1.5, -1.234567, -0.1, 0.0, 0.3333, 1.4999, 1.5]), 100_000)
    r = q.quantize(x, DeterministicRandom(3))
    est = q.dequantize(r - q.zero_point).reshape(7, -1).mean(axis=1)
    # one quantum is 3 / 64; Bernoulli std <= quantum / 2 per sample
    tol = 5 * (1 / q.scale) / 2 / math.sqrt(100_000)
    assert np.all(np.abs(est - x.reshape(7, -1)[:, 0]) < tol)


def test_symmetric_quantizer_maps_range_onto_0_to_2_pow_q() -> None:
    q = Quantizer.symmetric(0.7, 10)
    assert (q.scale, q.zero_point, q.max_value) == (1024 / 1.4, 512, 1024)
    ends = q.quantize(np.array([-0.7, 0.0, 0.7]), DeterministicRandom(0))
    assert ends.tolist() == [0, 512, 1024]
    r = q.quantize(np.linspace(-0.7, 0.7, 10_001), DeterministicRandom(0))
    assert r.min() >= 0
    assert r.max() <= 1024


def test_nonnegative_quantizer() -> None:
    q = Quantizer.nonnegative(50.0, 8)
    assert (q.zero_point, q.scale) == (0, 256 / 50.0)
    assert q.quantize(np.array([0.0, 50.0]), DeterministicRandom(0)).tolist() == [0, 256]


def test_quantizer_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match=r"quant_bits must be in 1\.\.48, got 49"):
        Quantizer.symmetric(1.0, 49)
    with pytest.raises(ConfigError, match="quant_bits"):
        Quantizer.symmetric(1.0, 0)
    with pytest.raises(ConfigError, match="low < high"):
        Quantizer.symmetric(0.0, 8)
    with pytest.raises(ConfigError, match="low < high"):
        Quantizer.symmetric(math.inf, 8)


def test_error_bound_is_n_quanta_plus_float_slack() -> None:
    q = Quantizer.symmetric(1.0, 16)
    assert q.sum_error_bound(10) == pytest.approx(10 * 2 / 2**16, rel=1e-9)
    assert q.sum_error_bound(10) > 10 * 2 / 2**16


def test_coordinate_clipping_clips_and_counts() -> None:
    x = np.array([-3.0, -1.0, -0.5, 0.0, 1.0, 2.0, np.inf, -np.inf])
    out, n = clip_values(x, 1.0, "coordinate")
    assert out.tolist() == [-1.0, -1.0, -0.5, 0.0, 1.0, 1.0, 1.0, -1.0]
    assert n == 4
    assert x[0] == -3.0  # input untouched


def test_nan_is_refused_with_count_not_values() -> None:
    x = np.array([0.25, np.nan, 0.125, np.nan])
    with pytest.raises(EncodingError, match=r"2 NaN coordinate\(s\) of 4") as info:
        clip_values(x, 1.0, "coordinate")
    assert "0.25" not in str(info.value)


def test_l2_clipping_rescales_and_counts_changed_coordinates() -> None:
    x = np.array([3.0, 0.0, -4.0])
    out, n = clip_values(x, 1.0, "l2")
    assert np.allclose(out, [0.6, 0.0, -0.8])
    assert n == 2
    inside, n_inside = clip_values(np.array([0.3, -0.4]), 1.0, "l2")
    assert inside.tolist() == [0.3, -0.4]
    assert n_inside == 0


def test_l2_clipping_of_huge_values_does_not_overflow() -> None:
    out, n = clip_values(np.array([1e300, -1e300, 1e300]), 2.0, "l2")
    assert np.allclose(out, 2.0 / math.sqrt(3) * np.array([1, -1, 1]))
    assert np.linalg.norm(out) <= 2.0 * (1 + 1e-12)
    assert n == 3


def test_l2_clipping_refuses_infinity() -> None:
    with pytest.raises(EncodingError, match="1 infinite"):
        clip_values(np.array([np.inf, 0.0]), 1.0, "l2")


def test_unknown_clip_mode() -> None:
    with pytest.raises(ConfigError, match="clip_mode"):
        clip_values(np.zeros(2), 1.0, "linf")  # type: ignore[arg-type]


def test_ranges_that_float64_cannot_scale_are_refused() -> None:
    with pytest.raises(ConfigError, match="too wide or too narrow"):
        Quantizer.symmetric(1e308, 16)
    with pytest.raises(ConfigError, match="too wide or too narrow"):
        Quantizer.symmetric(1e-310, 16)
