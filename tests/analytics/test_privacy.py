"""Distributed DP for analytics: calibration from (epsilon, delta) and the reported account."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.analytics import (
    DistributedDP,
    Histogram,
    Sum,
    calibrate_variance,
    plan_noise,
    run,
    skellam_epsilon,
)
from secagg.errors import ConfigError

DOMAIN = [f"b{i}" for i in range(20)]


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize(("l1", "l2"), [(1, 1), (4, 2), (10, math.sqrt(10))])
def test_calibrated_variance_meets_the_target_and_is_tight(
    epsilon: float, l1: float, l2: float
) -> None:
    variance = calibrate_variance(epsilon, 1e-6, l1, l2)
    assert skellam_epsilon(variance, l1, l2, 1e-6) <= epsilon
    assert skellam_epsilon(0.99 * variance, l1, l2, 1e-6) > epsilon


def test_calibration_is_close_to_the_gaussian_mechanism() -> None:
    # For large noise Skellam behaves like a Gaussian; the classic bound
    # sigma = sqrt(2 ln(1.25/delta)) * D2 / epsilon (epsilon < 1) is an upper reference.
    variance = calibrate_variance(0.5, 1e-5, 1, 1)
    classic = (math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5) ** 2
    assert 0.5 * classic < variance < classic


@settings(max_examples=50, deadline=None)
@given(st.floats(0.1, 1e6), st.floats(1.01, 3.0), st.integers(1, 20))
def test_more_noise_never_costs_privacy(variance: float, factor: float, l1: int) -> None:
    l2 = math.sqrt(l1)
    assert skellam_epsilon(variance * factor, l1, l2, 1e-6) <= skellam_epsilon(
        variance, l1, l2, 1e-6
    )


def test_each_client_adds_the_share_that_the_floor_needs() -> None:
    dp = DistributedDP(epsilon=1.0, delta=1e-6, colluders=2)
    plan = plan_noise(dp, 3.0, math.sqrt(3.0), floor=10)
    # 10 included clients: the 7 that are neither the protected one nor colluders suffice.
    assert plan.variance(7) == pytest.approx(plan.target_variance)
    assert plan.per_client.variance == pytest.approx(plan.target_variance / 7)
    with pytest.raises(ConfigError, match="min_clients"):
        plan_noise(dp, 1.0, 1.0, floor=3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0},
        {"epsilon": math.inf},
        {"epsilon": 1, "delta": 0},
        {"epsilon": 1, "delta": 1},
        {"epsilon": 1, "confidence": 1.0},
        {"epsilon": 1, "colluders": -1},
    ],
)
def test_invalid_targets_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        DistributedDP(**kwargs)  # type: ignore[arg-type]


def test_empirical_error_matches_reported_stddev_and_intervals_cover() -> None:
    """Across repeated real rounds (some with a client dropped), the per-bucket errors have
    the reported standard deviation and the 90% intervals cover about 90% of the time."""
    query = Histogram(domain=DOMAIN, max_contributions=2)
    rng = np.random.default_rng(7)
    devices = [list(rng.choice(DOMAIN, size=3)) for _ in range(12)]
    dp = DistributedDP(epsilon=1.0, delta=1e-6, confidence=0.9)
    z2, covered, samples = [], 0, 0
    for rep in range(30):
        dropout = {0: "masked-input"} if rep % 2 else {}
        result = run(query, devices, min_clients=10, dp=dp, dropout=dropout, seed=1000 + rep)
        assert result.released
        assert (result.epsilon, result.delta) == (1.0, 1e-6)
        truth = sum(query.encode(devices[i]) for i in result.included)
        for i, label in enumerate(query.labels):
            sd = result.stddev[label]
            err = result.counts[label] - truth[i]
            z2.append((err / sd) ** 2)
            low, high = result.intervals[label]
            covered += low <= truth[i] <= high
            samples += 1
        # The noise in the release is that of the clients actually included.
        plan = plan_noise(dp, query.l1_sensitivity, query.l2_sensitivity, 10)
        assert result.stddev[DOMAIN[0]] == pytest.approx(
            math.sqrt(plan.variance(len(result.included)))
        )
        assert result.stddev[DOMAIN[0]] ** 2 >= plan.target_variance
    # 600 samples: mean of z^2 has sd sqrt(2/600) ~ 0.058; coverage has sd ~ 0.012.
    assert 0.8 < float(np.mean(z2)) < 1.2
    assert 0.86 < covered / samples < 0.94


def test_sum_reports_stddev_in_answer_units() -> None:
    query = Sum(bounds=(0, 10), step=0.5)
    dp = DistributedDP(epsilon=2.0)
    result = run(query, [[3.0]] * 10, dp=dp, seed=4)
    plan = plan_noise(dp, query.l1_sensitivity, query.l2_sensitivity, 10)
    assert result.stddev["sum"] == pytest.approx(0.5 * math.sqrt(plan.variance(10)))
    low, high = result.intervals["sum"]
    assert high - low == pytest.approx(2 * dp.z * result.stddev["sum"])
    report = result.to_dict()
    assert report["epsilon"] == 2.0
    assert report["counts"][0]["interval"] == [low, high]
