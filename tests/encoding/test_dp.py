"""Distributed DP: Skellam noise sampling, calibration, headroom and reporting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom, SystemRandom
from secagg.encoding import (
    DPConfig,
    Encoder,
    EncodingSpec,
    SkellamNoise,
    required_bits,
    ring_sum,
    sample_poisson,
    skellam_tail_bound,
)
from secagg.errors import ConfigError, EncodingError


def _poisson_pmf(mu: float, kmax: int) -> np.ndarray:
    return np.array([math.exp(k * math.log(mu) - mu - math.lgamma(k + 1)) for k in range(kmax)])


@pytest.mark.parametrize("mu", [0.01, 0.7, 12.0, 5000.0, 3e7])
def test_poisson_sampler_mean_and_variance(mu: float) -> None:
    n = 200_000
    x = sample_poisson(mu, n, DeterministicRandom(f"poisson-{mu}"))
    assert x.dtype == np.int64
    assert x.min() >= 0
    assert abs(x.mean() - mu) < 5 * math.sqrt(mu / n)
    # var of the sample variance ~ (2 mu^2 + mu) / n for a Poisson
    assert abs(x.var() - mu) < 5 * math.sqrt((2 * mu * mu + mu) / n)


def test_poisson_sampler_matches_the_pmf() -> None:
    mu, n = 3.2, 200_000
    x = sample_poisson(mu, n, DeterministicRandom("pmf"))
    counts = np.bincount(x, minlength=30)[:30]
    expected = n * _poisson_pmf(mu, 30)
    big = expected >= 50
    assert np.all(np.abs(counts[big] - expected[big]) <= 5 * np.sqrt(expected[big]))


def test_huge_noise_is_refused_rather_than_sampled_badly() -> None:
    with pytest.raises(ConfigError, match="over the limit"):
        SkellamNoise(mu=1e14)


def test_tail_bound_holds_against_the_exact_skellam_distribution() -> None:
    for mu_total in (0.3, 2.0, 25.0):
        pmf = _poisson_pmf(mu_total, 400)
        skellam = np.convolve(pmf, pmf[::-1])  # index i <-> value i - 399
        values = np.arange(skellam.size) - (pmf.size - 1)
        a = skellam_tail_bound(mu_total, 20)
        assert skellam[np.abs(values) >= a].sum() <= 2.0**-20
        assert skellam[np.abs(values) >= a // 2].sum() > 2.0**-20  # and not absurdly loose


def test_headroom_is_about_ten_sigma_for_2_pow_minus_64() -> None:
    noise = SkellamNoise(mu=1e6)
    sigma = noise.aggregate_stddev(50)
    a = noise.headroom(50, 64)
    assert 9 * sigma < a < 11 * sigma
    assert skellam_tail_bound(0.0, 64) == 0


def test_aggregate_noise_variance_matches_the_target() -> None:
    """Many trials at a fixed seed: empirical variance of the decoded noise vs the target."""
    n, dim, trials, target = 8, 5000, 10, 0.05
    spec = EncodingSpec(clip=1.0, quant_bits=12, dp=DPConfig(noise_stddev=target, min_clients=n))
    enc = Encoder(spec, np.zeros(dim), n_clients=n)
    rng = DeterministicRandom("dp-variance")
    zeros = np.zeros(dim)  # 0.0 quantizes exactly: the decoded sum is pure noise
    noise = np.concatenate(
        [
            enc.decode(
                ring_sum([enc.encode(zeros, rng=rng) for _ in range(n)], enc.bits), n
            ).sum_flat
            for _ in range(trials)
        ]
    )
    res = enc.decode(ring_sum([enc.encode(zeros, rng=rng) for _ in range(n)], enc.bits), n)
    assert res.noise_stddev == pytest.approx(target)
    assert res.noise_stddev_quantized == pytest.approx(target * enc.scale)
    assert res.dp_target_met is True
    samples = noise.size  # 50_000
    # Relative std of a sample variance is about sqrt(2 / samples) = 0.63%; allow 3%.
    assert noise.var() == pytest.approx(target**2, rel=0.03)
    assert abs(noise.mean()) < 5 * target / math.sqrt(samples)


def test_fewer_survivors_carry_less_noise_and_say_so() -> None:
    spec = EncodingSpec(clip=1.0, quant_bits=10, dp=DPConfig(noise_stddev=0.2, min_clients=4))
    enc = Encoder(spec, np.zeros(3), n_clients=10)
    rng = DeterministicRandom(0)
    total = ring_sum([enc.encode(np.zeros(3), rng=rng) for _ in range(2)], enc.bits)
    res = enc.decode(total, 2)
    assert res.dp_target_met is False
    assert res.noise_stddev == pytest.approx(0.2 * math.sqrt(2 / 4))
    assert enc.decode(total, 9).noise_stddev == pytest.approx(0.2 * math.sqrt(9 / 4))


def test_bit_width_accounts_for_noise_headroom() -> None:
    spec = EncodingSpec(clip=1.0, quant_bits=16, dp=DPConfig(noise_stddev=2.0, min_clients=5))
    enc = Encoder(spec, np.zeros(10), n_clients=20)
    assert enc.noise is not None
    sigma_all = enc.noise.aggregate_stddev(20)
    assert enc.noise_headroom > 9 * sigma_all
    assert enc.bits == required_bits(20, 16, enc.noise_headroom) > required_bits(20, 16)
    assert 2**enc.bits > 20 * 2**16 + 2 * enc.noise_headroom


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2000),
    q=st.integers(1, 30),
    sigma_quanta=st.floats(0.05, 1e5),
    min_frac=st.floats(0.0, 1.0),
    extra_bits=st.integers(-1, 2),
)
def test_no_accepted_dp_configuration_wraps_within_the_noise_window(
    n: int, q: int, sigma_quanta: float, min_frac: float, extra_bits: int
) -> None:
    """Integer sums anywhere in [-headroom, n 2^q + headroom] decode exactly (no wrap)."""
    min_clients = max(1, round(min_frac * n))
    dp = DPConfig(noise_stddev=sigma_quanta / 2**q * 2, min_clients=min_clients)
    spec = EncodingSpec(clip=1.0, quant_bits=q, dp=dp)
    auto = Encoder(spec, np.zeros(4), n_clients=n)
    bits = auto.bits + extra_bits
    if extra_bits < 0 or bits > 64:
        with pytest.raises((EncodingError, ConfigError)):
            Encoder(spec, np.zeros(4), n_clients=n, bits=bits)
        return
    enc = Encoder(spec, np.zeros(4), n_clients=n, bits=bits)
    a, top = enc.noise_headroom, n * 2**q
    assert auto.noise is not None
    assert a >= 9 * auto.noise.aggregate_stddev(n)
    assert 2**enc.bits > top + 2 * a
    sums = np.array([-a, -a + 1, top + a - 1, top + a], dtype=np.int64)
    total = (sums.view(np.uint64) & np.uint64(2**enc.bits - 1)).astype(enc.dtype)
    res = enc.decode(total, n)
    expected = (sums - n * enc.quantizer.zero_point) / enc.scale
    assert np.array_equal(res.sum_flat, expected)


def test_noise_is_reproducible_per_seed_and_default_is_system_random() -> None:
    noise = SkellamNoise(mu=40.0)
    a = noise.sample(1000, DeterministicRandom(1))
    assert np.array_equal(a, noise.sample(1000, DeterministicRandom(1)))
    assert noise.sample(1000, SystemRandom()).shape == (1000,)
    assert abs(a.mean()) < 5 * math.sqrt(80 / 1000)


def test_dp_config_validation() -> None:
    with pytest.raises(ConfigError, match="noise_stddev"):
        DPConfig(noise_stddev=0.0)
    with pytest.raises(ConfigError, match="noise_stddev"):
        DPConfig(noise_stddev=float("inf"))
    with pytest.raises(ConfigError, match="min_clients"):
        DPConfig(noise_stddev=1.0, min_clients=0)
    with pytest.raises(ConfigError, match="mechanism"):
        DPConfig(noise_stddev=1.0, mechanism="gaussian")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="wrap_log2"):
        DPConfig(noise_stddev=1.0, wrap_log2=0)
    spec = EncodingSpec(clip=1.0, dp=DPConfig(noise_stddev=1.0, min_clients=5))
    with pytest.raises(ConfigError, match="min_clients=5 exceeds n_clients=4"):
        Encoder(spec, np.zeros(2), n_clients=4)
