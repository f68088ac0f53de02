"""Local DP baselines: unbiased estimates whose spread matches the stated standard deviation."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.analytics.localdp import krr_estimate, krr_stddev, oue_estimate, oue_stddev
from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import ConfigError


@pytest.mark.parametrize(
    ("estimate", "stddev"), [(krr_estimate, krr_stddev), (oue_estimate, oue_stddev)]
)
def test_local_dp_is_unbiased_with_the_stated_spread(estimate, stddev) -> None:  # type: ignore[no-untyped-def]
    k, n, eps = 6, 3000, 1.0
    items = np.repeat(np.arange(k), [1500, 800, 400, 200, 100, 0])
    truth = np.bincount(items, minlength=k).astype(float)
    rng = DeterministicRandom(1)
    runs = np.array([estimate(items, k, eps, rng) for _ in range(100)])
    sd = stddev(n, k, eps, truth)
    z = (runs - truth) / sd
    assert abs(float(z.mean())) < 0.15  # 600 samples: sd of the mean ~ 0.04
    assert 0.8 < float((z**2).mean()) < 1.2


def test_error_grows_with_sqrt_n() -> None:
    assert oue_stddev(40_000, 10, 1.0)[0] == pytest.approx(2 * oue_stddev(10_000, 10, 1.0)[0])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ConfigError):
        krr_estimate([0, 5], 3, 1.0, DeterministicRandom(1))
    with pytest.raises(ConfigError):
        oue_estimate([0], 1, 1.0, DeterministicRandom(1))
