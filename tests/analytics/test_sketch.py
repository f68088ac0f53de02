"""Count sketch for open domains: exact aggregation, keyed hashing, documented error bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.analytics import CountSketch, DistributedDP, run
from secagg.analytics.sketch import median_failure_probability
from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding.dp import SkellamNoise

SEED = "a5" * 16


def _zipf_population(n_items: int, n_clients: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 1.1
    picks = rng.choice(n_items, size=n_clients, p=weights / weights.sum())
    return [[f"word{int(i)}"] for i in picks]


def _true_counts(devices: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for items in devices:
        for item in set(items):
            counts[item] = counts.get(item, 0) + 1
    return counts


def test_secure_sketch_equals_plain_sketch_of_included_clients() -> None:
    devices = _zipf_population(50, 14, seed=1)
    query = CountSketch(width=16, depth=3, seed=SEED, candidates=["word0", "word1", "never"])
    result = run(query, devices, min_clients=10, dropout={2: "masked-input"}, seed=2)
    plain = sum(query.encode(devices[i]) for i in result.included)
    assert result.counts == query.decode(plain)
    assert 2 not in result.included


def test_median_failure_probability() -> None:
    assert median_failure_probability(1, 0.25) == pytest.approx(0.25)
    assert median_failure_probability(5, 0.25) == pytest.approx(0.103515625)
    assert median_failure_probability(9, 0.25) < median_failure_probability(5, 0.25)


@pytest.mark.parametrize("noise_mu", [0.0, 20.0])
def test_errors_stay_within_the_documented_bound(noise_mu: float) -> None:
    """For every item, |estimate - count| exceeds the bound no more often than promised."""
    devices = _zipf_population(3000, 20_000, seed=3)
    truth = _true_counts(devices)
    query = CountSketch(width=256, depth=5, seed=SEED)
    total = np.zeros(query.dim, dtype=np.int64)
    for item, count in truth.items():  # one item per client: the sum of their vectors
        total += count * query.encode([item])
    noise = SkellamNoise(noise_mu)
    total += noise.sample(query.dim, DeterministicRandom(4))
    bound, failure = query.error_bound(total, noise_variance=noise.variance)
    f2 = sum(c * c for c in truth.values())
    # The bound uses F2 estimated from the sketch; it is close to the true one.
    exact = 2 * math.sqrt(f2 / query.width + noise.variance)
    assert 0.7 * exact < bound < 1.3 * exact
    estimates = query.estimate(total, list(truth))
    misses = sum(abs(estimates[x] - c) > bound for x, c in truth.items())
    assert misses / len(truth) <= failure
    # The heavy hitters stand out far above the bound.
    assert abs(estimates["word0"] - truth["word0"]) < bound < truth["word0"] / 3


def test_candidates_outside_the_data_decode_near_zero() -> None:
    devices = _zipf_population(200, 3000, seed=5)
    query = CountSketch(width=128, depth=7, seed=SEED)
    total = sum(query.encode(items) for items in devices)
    bound, _ = query.error_bound(total)
    absent = [f"absent{i}" for i in range(300)]
    assert sum(abs(v) > bound for v in query.estimate(total, absent).values()) <= 3


def test_hashing_is_keyed_by_the_public_seed() -> None:
    a = CountSketch(width=1024, depth=4, seed=SEED)
    b = CountSketch(width=1024, depth=4, seed="5a" * 16)
    assert a.locate("hello")[0].tolist() != b.locate("hello")[0].tolist()
    assert a.locate("hello")[0].tolist() == CountSketch(1024, 4, SEED).locate("hello")[0].tolist()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=5), max_size=12), st.integers(1, 4))
def test_client_vector_is_within_the_sensitivity(items: list[str], m: int) -> None:
    query = CountSketch(width=4, depth=3, seed=SEED, max_contributions=m)
    vec = query.encode(items)
    per_row = np.abs(vec.reshape(3, 4)).sum(axis=1)
    # At most m distinct items, each +-1 once per row (collisions may cancel).
    assert (per_row <= min(m, len(set(items)))).all()
    assert ((per_row - min(m, len(set(items)))) % 2 == 0).all()
    assert np.abs(vec).sum() <= query.l1_sensitivity
    assert np.linalg.norm(vec) <= query.l2_sensitivity + 1e-9
    low, high = query.coordinate_bounds()
    assert vec.min(initial=0) >= low
    assert vec.max(initial=0) <= high


def test_sketch_with_dp_reports_the_bound_in_the_answer() -> None:
    devices = _zipf_population(30, 12, seed=6)
    query = CountSketch(width=8, depth=3, seed=SEED, candidates=["word0"])
    result = run(query, devices, min_clients=10, dp=DistributedDP(epsilon=4.0), seed=7)
    assert result.released
    assert result.answer["error_bound"] > 0
    assert 0 < result.answer["failure_probability"] < 1
    assert result.stddev["word0"] > 0
