"""Queries as values: canonical encoding, digest, round trip, vectors and bit widths."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.analytics import (
    Count,
    CountSketch,
    GroupBy,
    Histogram,
    Mean,
    Quantiles,
    Query,
    Sum,
)
from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import ConfigError, EncodingError

SEED = "0f" * 16

QUERIES: list[Query] = [
    Histogram(domain=["a", "b", 7], max_contributions=3, max_per_item=2),
    Count(max_contributions=4),
    Sum(bounds=(-2.5, 10.0), max_contributions=2),
    Mean(bounds=(0, 1), max_contributions=1, step=0.01),
    Quantiles(bounds=(0, 100), buckets=20, quantiles=[0.1, 0.9]),
    GroupBy([("app_version", ["1.0", "2.0"]), ("category", ["crash", "hang"])]),
    CountSketch(width=32, depth=5, seed=SEED, candidates=["x", "y"], max_contributions=2),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.type_name)
def test_round_trip_and_canonical_digest(query: Query) -> None:
    text = query.to_json()
    again = Query.from_json(text)
    assert type(again) is type(query)
    assert again == query
    assert again.to_json() == text
    data = json.loads(text)
    assert data["kind"] == "query"
    assert data["version"] == 1
    assert data["type"] == query.type_name
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert query.digest() == hashlib.sha256(text.encode()).digest()
    # Key order and whitespace in the input do not change the canonical form.
    shuffled = json.dumps(dict(reversed(list(data.items()))), indent=2)
    assert Query.from_json(shuffled).digest() == query.digest()


def test_any_parameter_changes_the_digest() -> None:
    base = Histogram(domain=["a", "b"], max_contributions=1)
    others = [
        Histogram(domain=["a", "b"], max_contributions=2),
        Histogram(domain=["b", "a"], max_contributions=1),
        Histogram(domain=["a", "b", "c"], max_contributions=1),
        CountSketch(width=8, depth=3, seed=SEED),
    ]
    assert len({base.digest(), *(q.digest() for q in others)}) == 1 + len(others)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"kind":"encoding","version":1,"type":"histogram","domain":["a"]}',
        '{"kind":"query","version":2,"type":"histogram","domain":["a"]}',
        '{"kind":"query","version":1,"type":"nope"}',
        '{"kind":"query","version":1,"type":"histogram","domain":["a"],"extra":1}',
        '{"kind":"query","version":1,"type":"histogram","domain":[]}',
        '{"kind":"query","version":1,"type":"histogram","domain":["a","a"]}',
        '{"kind":"query","version":1,"type":"histogram","domain":["a"],"max_contributions":0}',
        '{"kind":"query","version":1,"type":"sum","bounds":[1,1]}',
        '{"kind":"query","version":1,"type":"count_sketch","width":4,"depth":3,"seed":"zz"}',
        '{"kind":"query","version":1,"type":"quantiles","bounds":[0,1],"buckets":4,'
        '"quantiles":[1.5]}',
    ],
)
def test_invalid_encodings_are_refused_with_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        Query.from_json(text)


def test_histogram_caps_per_item_and_in_total() -> None:
    q = Histogram(domain=["smile", "heart", "fire"], max_contributions=3, max_per_item=2)
    # 500 smiles count twice (per-item cap); the most used items are kept first.
    values = ["fire"] + ["smile"] * 500 + ["heart"] * 3 + ["unknown"] * 9
    assert q.encode(values).tolist() == [2, 1, 0]
    assert q.encode([]).tolist() == [0, 0, 0]
    assert q.l1_sensitivity == 3
    assert q.l2_sensitivity == pytest.approx(5**0.5)


def test_group_by_accepts_tuples_and_mappings() -> None:
    q = GroupBy({"v": ["1", "2"], "cat": ["a", "b"]}, max_contributions=2, max_per_item=1)
    vec = q.encode([("2", "a"), {"v": "1", "cat": "b"}, ("3", "a"), ["2", "a"], "junk"])
    counts = q.decode(vec)
    assert counts == {("1", "a"): 0, ("1", "b"): 1, ("2", "a"): 1, ("2", "b"): 0}


def test_sum_and_mean_are_unbiased_and_bounded() -> None:
    rng = DeterministicRandom(5)
    q = Mean(bounds=(-1.0, 1.0), max_contributions=2, step=0.25)
    total = np.zeros(2, dtype=np.int64)
    for _ in range(2000):
        # 0.3 is not a multiple of the step; 9.0 is clipped to 1.0; 0.1 is over the cap of 2.
        total += q.encode([0.3, 9.0, 0.1], rng)
    counts = q.decode(total)
    assert counts["count"] == 4000
    assert counts["sum"] / 2000 == pytest.approx(1.3, abs=0.01)
    assert q.answer(counts, total)["mean"] == pytest.approx(0.65, abs=0.005)
    with pytest.raises(EncodingError):
        Sum(bounds=(0, 1)).encode([float("nan")], rng)


def test_quantiles_interpolate_inside_buckets() -> None:
    q = Quantiles(bounds=(0, 10), buckets=10, quantiles=[0.5, 0.9])
    total = sum(q.encode([x + 0.5]) for x in range(10))
    answer = q.answer(q.decode(total), total)
    assert answer["q0.5"] == pytest.approx(5.0)
    assert answer["q0.9"] == pytest.approx(9.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "zz"]), max_size=40),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_histogram_vector_respects_caps(values: list[str], m: int, p: int) -> None:
    q = Histogram(domain=["a", "b", "c", "d"], max_contributions=m, max_per_item=p)
    vec = q.encode(values)
    true = np.array([values.count(x) for x in ["a", "b", "c", "d"]])
    assert vec.sum() <= m
    assert (vec <= min(p, m)).all()
    assert (vec <= true).all()
    # The cap is the only loss: nothing is dropped while budget remains.
    assert vec.sum() == min(m, int(np.minimum(true, min(p, m)).sum()))
    assert np.abs(vec).sum() <= q.l1_sensitivity
    assert np.linalg.norm(vec) <= q.l2_sensitivity + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(QUERIES), st.integers(1, 10_000), st.integers(0, 1000))
def test_bit_width_holds_any_sum_of_extreme_vectors(query: Query, n: int, headroom: int) -> None:
    low, high = query.coordinate_bounds()
    bits = query.bits(n, headroom)
    window = query.window_low(n, headroom)
    # The extreme sums, shifted into the decode window, are in [0, 2^b).
    assert n * low - headroom + window >= 0
    assert n * high + headroom + window < 1 << bits


def test_too_many_bits_is_refused() -> None:
    with pytest.raises(ConfigError, match="64"):
        Sum(bounds=(0, 1), step=1e-12, max_contributions=1000).bits(10**9)
