"""Bit-width choice: no configuration the validator accepts can wrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding import (
    MAX_BITS,
    Encoder,
    EncodingSpec,
    choose_bits,
    limb_bits,
    required_bits,
)
from secagg.errors import ConfigError, EncodingError


@pytest.mark.parametrize(
    ("n", "q", "headroom", "bits"),
    [
        (1, 1, 0, 2),
        (3, 8, 0, 10),
        (4, 8, 0, 11),
        (1000, 16, 0, 26),
        (4, 8, 1, 11),
        (1, 62 - 14, 0, 49),
    ],
)
def test_required_bits(n: int, q: int, headroom: int, bits: int) -> None:
    assert required_bits(n, q, headroom) == bits
    assert 2**bits > n * 2**q + 2 * headroom >= 2 ** (bits - 1)


def test_explicit_bits_that_could_wrap_are_refused_with_the_numbers() -> None:
    with pytest.raises(EncodingError) as info:
        choose_bits(1000, 16, bits=25)
    msg = str(info.value)
    for part in ("bits=25 could wrap", "n=1000", "quant_bits=16", "needs 26 bits", "got 25"):
        assert part in msg
    assert choose_bits(1000, 16, bits=26) == 26
    assert choose_bits(1000, 16, bits=64) == 64
    assert choose_bits(1000, 16) == 26


def test_noise_headroom_is_in_the_message() -> None:
    with pytest.raises(EncodingError, match=r"\+ 2\*500 \(DP noise headroom\)"):
        choose_bits(4, 8, noise_headroom=500, bits=10)


def test_more_than_64_bits_is_refused() -> None:
    with pytest.raises(EncodingError, match="needs 66 bits, more than the maximum 64"):
        choose_bits(2**20, 45)


@pytest.mark.parametrize("bits", [0, 65, -1, True, 8.0])
def test_bits_outside_1_to_64_is_a_config_error(bits: object) -> None:
    with pytest.raises(ConfigError):
        choose_bits(1, 1, bits=bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -3, True, 2.5])
def test_bad_client_counts(n: object) -> None:
    with pytest.raises(ConfigError, match="n_clients"):
        required_bits(n, 8)  # type: ignore[arg-type]


@given(
    n=st.integers(1, 10**7),
    q=st.integers(1, 48),
    headroom=st.integers(0, 2**40),
    bits=st.integers(1, MAX_BITS),
)
def test_accepted_bits_always_hold_the_largest_sum(
    n: int, q: int, headroom: int, bits: int
) -> None:
    try:
        b = choose_bits(n, q, noise_headroom=headroom, bits=bits)
    except EncodingError:
        assert n * 2**q + 2 * headroom >= 2**bits
        return
    assert b == bits
    assert n * 2**q + 2 * headroom < 2**b


@given(n=st.integers(1, 10**6), bits=st.integers(1, 64))
def test_limb_bits_is_the_largest_width_that_cannot_wrap(n: int, bits: int) -> None:
    if n >= 2**bits:
        with pytest.raises(EncodingError):
            limb_bits(bits, n)
        return
    L = limb_bits(bits, n)
    assert 1 <= L <= bits
    assert n * (2**L - 1) < 2**bits
    assert bits == L or n * (2 ** (L + 1) - 1) >= 2**bits


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5000),
    q=st.integers(1, 40),
    dim=st.integers(1, 40),
    extra_bits=st.integers(-2, 3),
    weighted=st.booleans(),
    report=st.booleans(),
    sign=st.sampled_from([1.0, -1.0]),
)
def test_no_accepted_configuration_wraps(
    n: int, q: int, dim: int, extra_bits: int, weighted: bool, report: bool, sign: float
) -> None:
    """n clients with the most extreme inputs: the modular sum equals the integer sum."""
    spec = EncodingSpec(
        clip=0.5,
        quant_bits=q,
        weighted=weighted,
        max_weight=3.0 if weighted else None,
        report_clipping=report,
    )
    bits = required_bits(n, q) + extra_bits
    if not 1 <= bits <= 64:
        return
    try:
        enc = Encoder(spec, np.zeros(dim), n_clients=n, bits=bits)
    except EncodingError:
        assert extra_bits < 0 or bits > 64
        return
    assert extra_bits >= 0
    extreme = np.full(dim, sign * 1e9)  # far outside the clip range: clipped, never wrapped
    kw = {"weight": 3.0} if weighted else {}
    vectors = [enc.encode(extreme, rng=DeterministicRandom(i), **kw) for i in range(min(n, 3))]
    for v in vectors[1:]:
        assert np.array_equal(v, vectors[0])  # extremes are exact: no rounding randomness
    integer_sum = [n * int(v) for v in vectors[0].tolist()]
    assert all(s < 2**enc.bits for s in integer_sum)
    ring_total = np.array([s % 2**enc.bits for s in integer_sum], dtype=np.uint64)
    assert ring_total.tolist() == integer_sum

    res = enc.decode(ring_total, n_included=n)
    true_sum = n * sign * 0.5 * (3.0 if weighted else 1.0)
    aggregate = res.weighted_sum_flat if weighted else res.sum_flat
    assert np.all(np.abs(aggregate - true_sum) <= res.error_bound)
    if weighted:
        assert res.total_weight == pytest.approx(3.0 * n)
        assert res.weighted_mean_flat is not None
        assert np.allclose(res.weighted_mean_flat, sign * 0.5)
    if report:
        assert res.clipped_coordinates == n * dim
        assert res.clients_clipped == n
