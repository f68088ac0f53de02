"""Heavy hitters by a prefix tree over several secure rounds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from secagg.analytics import DistributedDP, discover_heavy_hitters
from secagg.analytics.prefix import END
from secagg.errors import ConfigError

WORDS = ["cat", "car", "cart", "dog", "do", "zebra", "cab", "yak"]


def _population(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.2
    picks = rng.choice(len(WORDS), size=n, p=weights / weights.sum())
    return [[WORDS[i], "noise"] if i % 3 == 0 else [WORDS[i]] for i in picks]


def test_without_noise_finds_exactly_the_items_above_the_threshold() -> None:
    clients = _population(60, seed=1)
    truth = Counter(c[0] for c in clients)  # "noise" is never a client's most frequent item
    threshold = 5
    result = discover_heavy_hitters(
        clients,
        alphabet="abcdefghijklmnopqrstuvwxyz",
        threshold=threshold,
        max_length=5,
        min_clients=10,
        seed=2,
    )
    expected = {w: float(c) for w, c in truth.items() if c >= threshold}
    assert result.items == expected
    assert result.epsilon is None
    # One round per prefix length until nothing survives (at most max_length + 1).
    assert 2 <= len(result.rounds) <= 6
    assert all(r.released for r in result.rounds)


def test_items_longer_than_max_length_are_not_reported() -> None:
    clients = [["zebra"]] * 12 + [["yak"]] * 12
    result = discover_heavy_hitters(
        clients, alphabet="abekryz", threshold=5, max_length=3, min_clients=10, seed=3
    )
    assert result.items == {"yak": 12.0}


def test_with_dp_finds_the_heavy_items_and_reports_the_total_budget() -> None:
    clients = [["cat"]] * 400 + [["car"]] * 250 + [["dog"]] * 30 + [["yak"]] * 20
    dp = DistributedDP(epsilon=1.0, delta=1e-7)
    # Noise sized for 600 contributors: about 10 counts of stddev per candidate, so a threshold
    # of 100 is ~9 stddevs above an absent candidate and far below the heavy items.
    result = discover_heavy_hitters(
        clients,
        alphabet="acdgkorty",
        threshold=100,
        max_length=3,
        min_clients=600,
        dp=dp,
        seed=4,
        devices_per_client=35,
    )
    assert set(result.items) == {"cat", "car"}
    sd = next(iter(result.rounds[0].stddev.values()))
    assert 5 < sd < 20
    assert abs(result.items["cat"] - 400) < 6 * sd
    assert result.epsilon == pytest.approx(1.0 * len(result.rounds))
    assert result.delta == pytest.approx(1e-7 * len(result.rounds))


def test_too_few_clients_stop_the_discovery() -> None:
    result = discover_heavy_hitters(
        [["cat"]] * 5, alphabet="act", threshold=1, max_length=3, min_clients=10
    )
    assert result.items == {}
    assert "released nothing" in result.stopped


@pytest.mark.parametrize(
    "kwargs",
    [{"alphabet": ""}, {"alphabet": "a" + END}, {"threshold": 0}, {"max_length": 0}],
)
def test_bad_parameters(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"alphabet": "ab", "threshold": 1, "max_length": 2, **kwargs}
    with pytest.raises(ConfigError):
        discover_heavy_hitters([["a"]] * 12, **args)
