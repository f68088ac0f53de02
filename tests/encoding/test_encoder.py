"""Encoder: encode / aggregate (plain modular sum) / decode, clipping reports, weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding import Encoder, EncodingSpec, clip_values, ring_sum
from secagg.errors import ConfigError, EncodingError


def _inputs(seed: int, n: int, dim: int, clip: float, mode: str) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)  # test data only; the encoder never uses NumPy RNGs
    xs = gen.uniform(-clip, clip, size=(n, dim))
    xs[gen.random((n, dim)) < 0.1] = clip  # exact range ends are included
    xs[gen.random((n, dim)) < 0.1] = -clip
    if mode == "l2":
        norms = np.linalg.norm(xs, axis=1, keepdims=True)
        xs = xs / np.maximum(norms, 1e-300) * clip * gen.uniform(0, 1, size=(n, 1))
    return list(xs)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 40),
    q=st.integers(1, 32),
    dim=st.integers(1, 60),
    clip=st.floats(1e-3, 1e3),
    mode=st.sampled_from(["coordinate", "l2"]),
    seed=st.integers(0, 2**32),
)
def test_round_trip_error_within_documented_bound(
    n: int, q: int, dim: int, clip: float, mode: str, seed: int
) -> None:
    spec = EncodingSpec(clip=clip, quant_bits=q, clip_mode=mode)  # type: ignore[arg-type]
    enc = Encoder(spec, np.zeros(dim), n_clients=n)
    xs = _inputs(seed, n, dim, clip, mode)
    rng = DeterministicRandom(seed)
    total = ring_sum([enc.encode(x, rng=rng) for x in xs], enc.bits)
    res = enc.decode(total, n_included=n)
    true_sum = np.sum(xs, axis=0)
    assert np.all(np.abs(res.sum_flat - true_sum) <= res.error_bound)
    assert np.all(np.abs(res.mean_flat - true_sum / n) <= res.mean_error_bound)
    assert res.error_bound == pytest.approx(n * 2 * clip / 2**q, rel=2.0 ** (q - 50) + 2.0**-50)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    q=st.integers(4, 30),
    dim=st.integers(1, 30),
    max_weight=st.floats(0.5, 1e4),
    seed=st.integers(0, 2**32),
)
def test_weighted_mean_within_bound(n: int, q: int, dim: int, max_weight: float, seed: int) -> None:
    clip = 2.0
    spec = EncodingSpec(clip=clip, quant_bits=q, weighted=True, max_weight=max_weight)
    enc = Encoder(spec, {"v": np.zeros(dim)}, n_clients=n)
    xs = _inputs(seed, n, dim, clip, "coordinate")
    gen = np.random.default_rng(seed + 1)
    ws = gen.uniform(0.3, 1.0, size=n) * max_weight
    rng = DeterministicRandom(seed)
    total = ring_sum(
        [enc.encode({"v": x}, weight=float(w), rng=rng) for x, w in zip(xs, ws, strict=True)],
        enc.bits,
    )
    res = enc.decode(total, n_included=n)
    assert res.total_weight is not None
    assert res.total_weight_error_bound is not None
    assert abs(res.total_weight - ws.sum()) <= res.total_weight_error_bound
    weighted_sum = np.sum(ws[:, None] * np.array(xs), axis=0)
    assert np.all(np.abs(res.weighted_sum_flat - weighted_sum) <= res.error_bound)
    assert res.weighted_mean_flat is not None
    assert res.weighted_mean_error_bound is not None
    expected = weighted_sum / ws.sum()
    assert np.all(np.abs(res.weighted_mean_flat - expected) <= res.weighted_mean_error_bound)
    assert list(res.weighted_mean) == ["v"]


def test_weighted_mean_matches_fedavg_closely_at_16_bits() -> None:
    spec = EncodingSpec(clip=1.0, quant_bits=16, weighted=True, max_weight=100.0)
    enc = Encoder(spec, np.zeros(1000), n_clients=10)
    gen = np.random.default_rng(5)
    xs = gen.uniform(-1, 1, size=(10, 1000))
    ws = gen.integers(1, 101, size=10).astype(float)
    rng = DeterministicRandom(5)
    total = ring_sum(
        [enc.encode(x, weight=w, rng=rng) for x, w in zip(xs, ws, strict=True)], enc.bits
    )
    res = enc.decode(total, 10)
    assert res.weighted_mean_error_bound is not None
    err = np.max(np.abs(res.weighted_mean_flat - ws @ xs / ws.sum()))
    assert err <= res.weighted_mean_error_bound < 0.01


def test_values_outside_the_clip_range_are_clipped_counted_and_never_wrapped() -> None:
    spec = EncodingSpec(clip=1.0, quant_bits=8, report_clipping=True)
    enc = Encoder(spec, np.zeros(5), n_clients=4)
    xs = [
        np.array([0.5, -0.5, 0.0, 0.25, 1.0]),  # inside (1.0 is the edge, not clipped)
        np.array([5.0, 0.0, 0.0, 0.0, 0.0]),  # one clipped
        np.array([-1e12, 1e12, np.inf, 0.0, 0.1]),  # three clipped
        np.array([0.0, 0.0, 0.0, 0.0, -1.0000001]),  # one clipped, barely
    ]
    rng = DeterministicRandom(0)
    res = enc.decode(ring_sum([enc.encode(x, rng=rng) for x in xs], enc.bits), 4)
    clipped = np.sum([clip_values(x, 1.0, "coordinate")[0] for x in xs], axis=0)
    assert np.all(np.abs(res.sum_flat - clipped) <= res.error_bound)
    assert res.clipped_coordinates == 5
    assert res.clients_clipped == 3


def test_clip_count_uses_limbs_when_the_count_exceeds_2_pow_q() -> None:
    # b is set by n * 2^q; a count of up to D = 5000 per client needs several limbs.
    spec = EncodingSpec(clip=1.0, quant_bits=1, report_clipping=True)
    enc = Encoder(spec, np.zeros(5000), n_clients=1000)
    assert enc.bits == 11
    assert enc.layout.count_limb_bits == 1
    assert enc.layout.clip_count is not None
    assert enc.layout.clip_count.stop - enc.layout.clip_count.start == 13
    v = enc.encode(np.full(5000, 3.0), rng=DeterministicRandom(0))
    total = (v.astype(np.uint64) * np.uint64(1000)) & np.uint64(2**11 - 1)
    res = enc.decode(total, 1000)
    assert res.clipped_coordinates == 5000 * 1000
    assert res.clients_clipped == 1000


def test_l2_clipping_report_counts_changed_coordinates() -> None:
    spec = EncodingSpec(clip=1.0, quant_bits=12, clip_mode="l2", report_clipping=True)
    enc = Encoder(spec, np.zeros(3), n_clients=2)
    rng = DeterministicRandom(1)
    vs = [
        enc.encode(np.array([3.0, 4.0, 0.0]), rng=rng),
        enc.encode(np.array([0.1, 0.0, 0.2]), rng=rng),
    ]
    res = enc.decode(ring_sum(vs, enc.bits), 2)
    assert (res.clipped_coordinates, res.clients_clipped) == (2, 1)
    assert np.all(np.abs(res.sum_flat - [0.7, 0.8, 0.2]) <= res.error_bound)


def test_layout_dtype_and_dim() -> None:
    spec = EncodingSpec(
        clip=1.0, quant_bits=16, weighted=True, max_weight=5.0, report_clipping=True
    )
    enc = Encoder(spec, {"a": np.zeros((3, 4)), "b": np.zeros(2)}, n_clients=100)
    lay = enc.layout
    assert (lay.value_dim, lay.weight, lay.clip_flag, enc.dim) == (14, 14, 16, 17)
    assert lay.clip_count == slice(15, 16)
    assert enc.bits == 23
    assert enc.dtype == np.uint32
    v = enc.encode(
        {"a": np.zeros((3, 4)), "b": np.zeros(2)}, weight=1.0, rng=DeterministicRandom(0)
    )
    assert v.dtype == np.uint32
    assert v.shape == (17,)
    big = Encoder(EncodingSpec(clip=1.0, quant_bits=30), np.zeros(2), n_clients=8)
    assert big.bits == 34
    assert big.dtype == np.uint64
    assert big.encode(np.zeros(2), rng=DeterministicRandom(0)).dtype == np.uint64


def test_encoding_is_reproducible_from_the_random_source() -> None:
    enc = Encoder(EncodingSpec(clip=1.0, quant_bits=8), np.zeros(100), n_clients=2)
    x = np.linspace(-1, 1, 100)
    a = enc.encode(x, rng=DeterministicRandom(9))
    assert np.array_equal(a, enc.encode(x, rng=DeterministicRandom(9)))
    assert not np.array_equal(a, enc.encode(x, rng=DeterministicRandom(10)))
    assert enc.encode(x).shape == (100,)  # default: system randomness


def test_decode_with_fewer_included_clients() -> None:
    enc = Encoder(EncodingSpec(clip=1.0, quant_bits=10), np.zeros(4), n_clients=10)
    xs = _inputs(3, 6, 4, 1.0, "coordinate")
    rng = DeterministicRandom(3)
    res = enc.decode(ring_sum([enc.encode(x, rng=rng) for x in xs], enc.bits), n_included=6)
    assert np.all(np.abs(res.sum_flat - np.sum(xs, axis=0)) <= res.error_bound)
    assert res.n_included == 6


def test_structure_mismatch_is_refused() -> None:
    enc = Encoder(EncodingSpec(clip=1.0), {"w": np.zeros(3)}, n_clients=2)
    with pytest.raises(EncodingError, match="differs from the encoder's template"):
        enc.encode({"w": np.zeros(4)})
    with pytest.raises(EncodingError, match="differs"):
        enc.encode({"v": np.zeros(3)})


def test_weight_validation_never_reveals_the_weight() -> None:
    spec = EncodingSpec(clip=1.0, weighted=True, max_weight=10.0)
    enc = Encoder(spec, np.zeros(2), n_clients=2)
    with pytest.raises(EncodingError, match="needs weight="):
        enc.encode(np.zeros(2))
    for bad in (10.5, -1.0, float("nan"), float("inf")):
        with pytest.raises(EncodingError, match=r"\[0, max_weight=10.0\]") as info:
            enc.encode(np.zeros(2), weight=bad)
        assert str(bad) not in str(info.value)
    plain = Encoder(EncodingSpec(clip=1.0), np.zeros(2), n_clients=2)
    with pytest.raises(EncodingError, match="not weighted"):
        plain.encode(np.zeros(2), weight=1.0)


def test_zero_total_weight_leaves_weighted_mean_undefined() -> None:
    enc = Encoder(EncodingSpec(clip=1.0, weighted=True, max_weight=1.0), np.zeros(2), n_clients=2)
    v = enc.encode(np.ones(2), weight=0.0, rng=DeterministicRandom(0))
    res = enc.decode(v, 1)
    assert res.total_weight == 0.0
    assert res.weighted_mean is None
    assert res.weighted_mean_flat is None


def test_decode_validates_its_inputs() -> None:
    enc = Encoder(EncodingSpec(clip=1.0, quant_bits=8), np.zeros(3), n_clients=4)
    ok = np.zeros(3, dtype=np.uint32)
    with pytest.raises(EncodingError, match=r"n_included=5 outside 1..4"):
        enc.decode(ok, 5)
    with pytest.raises(EncodingError, match="n_included=0"):
        enc.decode(ok, 0)
    with pytest.raises(EncodingError, match=r"shape \(3,\)"):
        enc.decode(np.zeros(4, dtype=np.uint32), 1)
    with pytest.raises(EncodingError, match=r">= 2\^11"):
        enc.decode(np.array([0, 2**11, 0]), 1)
    with pytest.raises(EncodingError, match="integers"):
        enc.decode(np.zeros(3), 1)
    with pytest.raises(EncodingError, match="negative"):
        enc.decode(np.array([0, -1, 0]), 1)


def test_spec_validation() -> None:
    with pytest.raises(ConfigError, match="clip must be finite and > 0"):
        EncodingSpec(clip=0.0)
    with pytest.raises(ConfigError, match="clip must be"):
        EncodingSpec(clip=float("nan"))
    with pytest.raises(ConfigError, match="needs max_weight"):
        EncodingSpec(clip=1.0, weighted=True)
    with pytest.raises(ConfigError, match="only meaningful"):
        EncodingSpec(clip=1.0, max_weight=3.0)
    with pytest.raises(ConfigError, match="clip_mode"):
        EncodingSpec(clip=1.0, clip_mode="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="quant_bits"):
        EncodingSpec(clip=1.0, quant_bits=64)
    with pytest.raises(ConfigError, match="EncodingSpec"):
        Encoder(object(), np.zeros(2), 2)  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="no coordinates"):
        Encoder(EncodingSpec(clip=1.0), {}, 2)


def test_result_restores_the_template_structure() -> None:
    template = {"w": np.zeros((2, 2), np.float32), "b": [np.zeros(3), 0.0]}
    enc = Encoder(EncodingSpec(clip=4.0, quant_bits=20), template, n_clients=3)
    tree = {"w": np.full((2, 2), 1.0, np.float32), "b": [np.array([1.0, 2.0, 3.0]), -1.5]}
    rng = DeterministicRandom(2)
    res = enc.decode(ring_sum([enc.encode(tree, rng=rng) for _ in range(3)], enc.bits), 3)
    assert res.sum["w"].dtype == np.float32
    assert res.sum["w"].shape == (2, 2)
    assert isinstance(res.mean["b"][1], float)
    assert res.mean["b"][1] == pytest.approx(-1.5, abs=res.mean_error_bound)
    assert np.allclose(res.mean["b"][0], [1.0, 2.0, 3.0], atol=res.mean_error_bound)
    assert res.total.dtype == enc.dtype
