"""analytics.run over the real protocol: exact answers with dropouts, release threshold, binding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.analytics import (
    DEFAULT_MIN_CLIENTS,
    AnalyticsRound,
    Contributor,
    Count,
    DistributedDP,
    GroupBy,
    Histogram,
    Mean,
    Quantiles,
    round_digest,
    run,
)
from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import QueryMismatchError
from secagg.graph import NeighbourGraph
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import RoundConfig
from secagg.reasons import AbortReason

EMOJI = ["smile", "heart", "fire", "cry", "thumbs"]


def _devices(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice([*EMOJI, "other"], size=int(rng.integers(0, 8)))) for _ in range(n)]


def _plain(query: Histogram, devices: list[list[str]], included: list[int]) -> dict[str, float]:
    total = sum((query.encode(devices[i]) for i in included), np.zeros(query.dim, np.int64))
    return dict(zip(query.labels, map(float, total), strict=True))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dropout",
    [
        {},
        {0: "advertise-keys", 3: "share-keys"},
        {1: "masked-input", 5: "masked-input", 7: "unmasking"},
    ],
)
def test_exact_histogram_equals_plain_capped_counts_of_included(dropout: dict[int, str]) -> None:
    query = Histogram(domain=EMOJI, max_contributions=3, max_per_item=2)
    devices = _devices(16, seed=1)
    result = run(query, devices, min_clients=10, dropout=dropout, seed=3)
    assert result.released
    assert result.reason is None
    # Clients dropped before their masked input was summed are out; the rest are in.
    out = {c for c, r in dropout.items() if r != "unmasking"}
    assert set(result.included) == set(range(16)) - out
    assert set(result.dropped) == out
    assert result.counts == _plain(query, devices, result.included)
    assert result.stddev == {}
    assert result.intervals == {}
    assert result.epsilon is None
    # The uncapped count is larger: the caps did bind.
    raw = Counter(x for i in result.included for x in devices[i])
    assert sum(result.counts.values()) < sum(raw[e] for e in EMOJI)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.0, 0.3))
def test_exact_histogram_with_random_dropouts(seed: int, rate: float) -> None:
    query = GroupBy([("v", ["1", "2"]), ("e", EMOJI[:3])], max_contributions=2)
    rng = np.random.default_rng(seed)
    devices = [
        [(str(rng.integers(1, 3)), EMOJI[int(rng.integers(0, 4))]) for _ in range(3)]
        for _ in range(14)
    ]
    result = run(query, devices, min_clients=5, dropout=rate, seed=seed)
    if not result.released:
        # At n = 14 private parameters (2^-40 at 5% corrupt) leave little room for dropouts:
        # a round may abort, and then it says why and releases nothing.
        assert result.reason is not None
        assert not result.counts
        return
    expected = sum((query.encode(devices[i]) for i in result.included), np.zeros(6, np.int64))
    assert [result.counts[label] for label in query.labels] == expected.tolist()


def test_batched_devices_give_the_same_exact_answer() -> None:
    query = Histogram(domain=EMOJI, max_contributions=1)
    devices = _devices(60, seed=2)
    result = run(query, devices, min_clients=10, devices_per_client=6, seed=1)
    assert result.devices_per_client == 6
    assert len(result.included) == 60
    assert result.counts == _plain(query, devices, list(range(60)))


def test_below_min_clients_releases_nothing() -> None:
    query = Count()
    devices = [["x"]] * 9
    result = run(query, devices, seed=1)  # default threshold
    assert DEFAULT_MIN_CLIENTS == 10
    assert not result.released
    assert result.reason == AbortReason.TOO_FEW_CONTRIBUTORS
    assert result.counts == {}
    assert result.answer == {}
    assert result.intervals == {}
    assert "at least 10" in result.detail


def test_dropouts_below_min_clients_release_nothing() -> None:
    query = Histogram(domain=EMOJI)
    devices = _devices(12, seed=4)
    dropout = {0: "masked-input", 1: "masked-input", 2: "share-keys"}
    # k = 11, t = 7: the round itself survives three dropouts, so it is the release rule, not
    # the protocol, that withholds the answer (the default t for n = 12 would abort the round).
    result = run(query, devices, min_clients=10, dropout=dropout, seed=5, degree=11, threshold=7)
    assert not result.released
    assert result.reason == AbortReason.TOO_FEW_CONTRIBUTORS
    assert len(result.included) == 9
    assert result.counts == {}
    assert result.to_dict()["counts"] == []


def test_round_binds_the_spec_digest() -> None:
    query = Histogram(domain=EMOJI)
    result = run(query, _devices(10, seed=5), seed=6)
    spec = AnalyticsRound(query, min_clients=10, max_clients=10)
    assert result.round_context_digest == round_digest(spec) == spec.digest()


def test_spec_round_trip_and_bare_query() -> None:
    spec = AnalyticsRound(
        Histogram(domain=EMOJI), min_clients=20, dp=DistributedDP(2.0, 1e-7), max_clients=500
    )
    again = AnalyticsRound.from_json(spec.to_json())
    assert again.to_json() == spec.to_json()
    assert again.digest() == spec.digest()
    bare = AnalyticsRound.from_json(Histogram(domain=EMOJI).to_json())
    assert bare.min_clients == DEFAULT_MIN_CLIENTS
    assert bare.dp is None
    assert bare.query == Histogram(domain=EMOJI)


def _config(spec: AnalyticsRound) -> RoundConfig:
    return RoundConfig.create(
        4, 5, spec.bits, degree=3, context_digest=round_digest(spec), rng=DeterministicRandom(1)
    )


@pytest.mark.adversarial
@pytest.mark.parametrize(
    "shown",
    [
        # a weaker cap: more leakage per client
        AnalyticsRound(Histogram(domain=EMOJI, max_contributions=50)),
        # a lower release threshold
        AnalyticsRound(Histogram(domain=EMOJI), min_clients=2),
        # a weaker privacy target
        AnalyticsRound(Histogram(domain=EMOJI), dp=DistributedDP(epsilon=50.0)),
    ],
    ids=["cap", "threshold", "epsilon"],
)
def test_client_refuses_a_different_round(shown: AnalyticsRound) -> None:
    mine = AnalyticsRound(Histogram(domain=EMOJI), dp=DistributedDP(epsilon=1.0))
    client = Contributor(mine, DeterministicRandom(2))
    client.check(mine)
    client.check(_config(mine))
    assert client.vector(["fire"], _config(mine)).shape == (5,)
    for other in (shown, _config(shown)):
        with pytest.raises(QueryMismatchError) as info:
            client.vector(["fire"], other)
        assert info.value.expected == mine.digest().hex()
        assert info.value.shown == shown.digest().hex()
        assert "fire" not in str(info.value)


def test_contributor_vector_without_dp_is_the_capped_counts() -> None:
    query = Histogram(domain=EMOJI, max_contributions=2, max_per_item=1)
    spec = AnalyticsRound(query, max_clients=100)
    client = Contributor(spec, DeterministicRandom(2))
    assert client.vector(["fire", "fire", "cry", "x"], spec).tolist() == [0, 0, 1, 1, 0]


@pytest.mark.adversarial
def test_protocol_session_of_a_different_query_aborts_before_sending_keys() -> None:
    mine = AnalyticsRound(Histogram(domain=EMOJI))
    shown = AnalyticsRound(Histogram(domain=[*EMOJI[:4], "new"]))
    config = _config(shown)
    graph = NeighbourGraph(config.graph_seed, range(1, 5), config.degree)
    session = ClientSession(
        config,
        1,
        np.zeros(5, np.uint32),
        rng=DeterministicRandom(3),
        graph=graph,
        expected_context_digest=round_digest(mine),
    )
    reply = session.start()
    assert getattr(reply, "reason", None) == AbortReason.CONTEXT_MISMATCH


def test_numeric_queries_are_exact_without_dp() -> None:
    values = [[0.5 * (i % 7), 9.5, 3.0] for i in range(12)]  # multiples of the step: no rounding
    dropout = {4: "share-keys"}
    mean = run(Mean(bounds=(0, 10), max_contributions=2, step=0.5), values, dropout=dropout, seed=1)
    included = [values[i][:2] for i in mean.included]
    assert 4 not in mean.included
    assert mean.counts == {"sum": sum(map(sum, included)), "count": 2.0 * len(included)}
    assert mean.answer["mean"] == pytest.approx(sum(map(sum, included)) / (2 * len(included)))
    count = run(Count(max_contributions=3), values, seed=2)
    assert count.counts == {"count": 3.0 * 12}
    quant = run(Quantiles(bounds=(0, 10), buckets=5, max_contributions=1), values, seed=3)
    firsts = [v[0] for v in values]
    assert list(quant.counts.values()) == [
        float(sum(2 * b <= x < 2 * b + 2 for x in firsts)) for b in range(5)
    ]


def test_public_names_exist() -> None:
    import secagg.analytics as analytics

    for name in analytics.__all__:
        assert hasattr(analytics, name), name


def test_no_round_no_digest() -> None:
    result = run(Count(), [["x"]] * 3, seed=1)
    assert result.round_context_digest is None
    assert result.bits is not None
