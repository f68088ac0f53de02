"""Shamir sharing of 32-byte secrets over GF(2^31 - 1): layout, properties, misuse."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.shamir import (
    LIMBS,
    PRIME,
    SECRET_BYTES,
    SHARE_BYTES,
    Share,
    reconstruct_secret,
    split_secret,
)
from secagg.errors import (
    ConfigError,
    InconsistentSharesError,
    InsufficientSharesError,
    SecAggError,
    ShareError,
)

secrets = st.binary(min_size=SECRET_BYTES, max_size=SECRET_BYTES)
points = st.integers(1, PRIME - 1)


def limbs(secret: bytes) -> list[int]:
    return [int.from_bytes(secret[i : i + 2], "little") for i in range(0, SECRET_BYTES, 2)]


def reference_interpolate(nodes: list[tuple[int, list[int]]], x: int) -> list[int]:
    """Lagrange interpolation at ``x`` through (x_i, limbs_i) with Python ints, limb by limb."""
    out = []
    for limb in range(LIMBS):
        total = 0
        for i, (xi, yi) in enumerate(nodes):
            num = den = 1
            for j, (xj, _) in enumerate(nodes):
                if i != j:
                    num = num * (x - xj) % PRIME
                    den = den * (xi - xj) % PRIME
            total += yi[limb] * num * pow(den, -1, PRIME)
        out.append(total % PRIME)
    return out


def nodes(shares: list[Share]) -> list[tuple[int, list[int]]]:
    return [(s.x, list(s.values)) for s in shares]


def tampered(share: Share, limb: int, delta: int) -> Share:
    values = list(share.values)
    values[limb] = (values[limb] + delta) % PRIME
    return Share(share.x, tuple(values))


# ---- layout and independent checks ---------------------------------------------------------


def test_constants() -> None:
    assert PRIME == 2**31 - 1
    assert (SECRET_BYTES, LIMBS, SHARE_BYTES) == (32, 16, 68)


def test_threshold_one_shares_are_the_little_endian_limbs() -> None:
    secret = bytes(range(32))
    assert limbs(secret)[:2] == [0x0100, 0x0302]
    for share in split_secret(secret, [1, 5, PRIME - 1], 1):
        assert list(share.values) == limbs(secret)


@pytest.mark.parametrize(("m", "t"), [(2, 2), (5, 3), (9, 9), (12, 4)])
def test_shares_lie_on_a_degree_t_minus_1_polynomial(m: int, t: int) -> None:
    secret = os.urandom(32)
    shares = split_secret(secret, random.sample(range(1, PRIME), m), t)
    assert reference_interpolate(nodes(shares[:t]), 0) == limbs(secret)
    for share in shares[t:]:
        assert reference_interpolate(nodes(shares[:t]), share.x) == list(share.values)
    assert all(0 <= v < PRIME for s in shares for v in s.values)


def test_deterministic_with_a_seeded_source() -> None:
    a = split_secret(bytes(32), range(1, 6), 3, DeterministicRandom(9))
    b = split_secret(bytes(32), range(1, 6), 3, DeterministicRandom(9))
    c = split_secret(bytes(32), range(1, 6), 3, DeterministicRandom(10))
    assert a == b != c


def test_t_minus_1_shares_fit_every_secret() -> None:
    """t - 1 shares pin nothing down: with any candidate secret they extend to a valid sharing."""
    shares = split_secret(os.urandom(32), [3, 8, 13, 17, 19], 4)[:3]
    for candidate in (bytes(32), b"\xff" * 32, os.urandom(32)):
        through = [(0, limbs(candidate)), *nodes(shares)]
        extra = Share(21, tuple(reference_interpolate(through, 21)))
        assert reconstruct_secret([*shares, extra], 4) == candidate


def test_share_encoding_round_trip() -> None:
    share = split_secret(os.urandom(32), [PRIME - 1, 2], 2)[0]
    data = share.to_bytes()
    assert len(data) == SHARE_BYTES
    assert int.from_bytes(data[:4], "little") == PRIME - 1
    assert Share.from_bytes(data) == share


def test_share_repr_hides_values() -> None:
    share = split_secret(os.urandom(32), [7, 8], 2)[0]
    assert repr(share) == "Share(x=7)"
    assert str(share.values[0]) not in repr(share)


# ---- properties ----------------------------------------------------------------------------


@st.composite
def sharing_setups(draw: st.DrawFn, extra: int = 0) -> tuple[bytes, int, list[int], list[int]]:
    """secret, threshold t, distinct points (m of them), a shuffled subset of >= t + extra."""
    t = draw(st.integers(1, 20))
    m = draw(st.integers(t + extra, 40))
    xs = draw(st.lists(points, min_size=m, max_size=m, unique=True))
    order = draw(st.permutations(range(m)))
    size = draw(st.integers(t + extra, m))
    return draw(secrets), t, xs, list(order[:size])


@settings(max_examples=150, deadline=None)
@given(setup=sharing_setups())
def test_reconstruct_of_share_is_identity(setup: tuple[bytes, int, list[int], list[int]]) -> None:
    secret, t, xs, subset = setup
    shares = split_secret(secret, xs, t)
    assert [s.x for s in shares] == xs
    assert reconstruct_secret([shares[i] for i in subset], t) == secret


@settings(max_examples=150, deadline=None)
@given(
    setup=sharing_setups(extra=1),
    data=st.data(),
)
def test_one_tampered_share_is_detected_and_named(
    setup: tuple[bytes, int, list[int], list[int]], data: st.DataObject
) -> None:
    secret, t, xs, subset = setup
    shares = split_secret(secret, xs, t)
    victim = data.draw(st.sampled_from(subset))
    limb = data.draw(st.integers(0, LIMBS - 1))
    delta = data.draw(st.integers(1, PRIME - 1))
    shares[victim] = tampered(shares[victim], limb, delta)
    given_shares = [shares[i] for i in subset]
    with pytest.raises(InconsistentSharesError) as info:
        reconstruct_secret(given_shares, t)
    if len(subset) >= t + 2:
        assert info.value.bad_points == (xs[victim],)
    else:
        assert info.value.bad_points in ((), (xs[victim],))
    assert shares[victim].to_bytes().hex() not in str(info.value)
    assert all(str(v) not in str(info.value) for v in shares[victim].values if v > 10**6)


@settings(max_examples=60, deadline=None)
@given(
    t=st.integers(1, 8),
    e=st.integers(2, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_several_tampered_shares_are_detected_never_misnamed(t: int, e: int, seed: int) -> None:
    """With m >= t + 2e the error names exactly the bad points or (best effort) none."""
    rnd = random.Random(seed)
    m = min(40, t + 2 * e + rnd.randrange(0, 10))
    shares = split_secret(rnd.randbytes(32), rnd.sample(range(1, 10_000), m), t)
    bad = rnd.sample(range(m), e)
    for i in bad:
        shares[i] = tampered(shares[i], rnd.randrange(LIMBS), rnd.randrange(1, PRIME))
    with pytest.raises(InconsistentSharesError) as info:
        reconstruct_secret(shares, t)
    assert info.value.bad_points in ((), tuple(sorted(shares[i].x for i in bad)))


@pytest.mark.parametrize(("m", "t", "victim"), [(100, 98, 0), (100, 98, 57), (100, 51, 3)])
def test_one_bad_share_named_beyond_the_window_search(m: int, t: int, victim: int) -> None:
    """Few spare shares among many: no small set of consecutive windows avoids the bad one."""
    secret = os.urandom(32)
    shares = split_secret(secret, range(1, m + 1), t)
    shares[victim] = tampered(shares[victim], 5, 1)
    with pytest.raises(InconsistentSharesError) as info:
        reconstruct_secret(shares, t)
    assert info.value.bad_points == (victim + 1,)
    assert reconstruct_secret(shares[:victim] + shares[victim + 1 :], t) == secret


def test_one_extra_share_detects_but_cannot_name() -> None:
    shares = split_secret(os.urandom(32), range(1, 6), 4)
    shares[0] = tampered(shares[0], 0, 1)
    with pytest.raises(InconsistentSharesError) as info:
        reconstruct_secret(shares, 4)
    assert info.value.bad_points == ()


def test_large_configuration_round_trip() -> None:
    secret = os.urandom(32)
    shares = split_secret(secret, range(1, 1001), 501)
    assert reconstruct_secret(shares, 501) == secret
    assert reconstruct_secret(shares[499:], 501) == secret


# ---- misuse --------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0, -1, 4])
def test_split_bad_threshold(threshold: int) -> None:
    with pytest.raises(ConfigError):
        split_secret(bytes(32), [1, 2, 3], threshold)


def test_split_no_points() -> None:
    with pytest.raises(ConfigError):
        split_secret(bytes(32), [], 1)


@pytest.mark.parametrize("xs", [[1, 2, 2], [0, 1], [1, PRIME], [-1, 3], [1, 2**32]])
def test_split_bad_points(xs: list[int]) -> None:
    with pytest.raises(ShareError):
        split_secret(bytes(32), xs, 2)


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_split_bad_secret_length(size: int) -> None:
    secret = bytes(range(0xC0, 0xC0 + size))
    with pytest.raises(ShareError) as info:
        split_secret(secret, [1, 2], 2)
    if secret:
        assert secret.hex() not in str(info.value)


def test_split_secret_must_be_bytes() -> None:
    with pytest.raises(ShareError):
        split_secret(bytearray(32), [1, 2], 2)  # type: ignore[arg-type]


def test_reconstruct_too_few_shares() -> None:
    shares = split_secret(os.urandom(32), range(1, 6), 3)
    with pytest.raises(InsufficientSharesError):
        reconstruct_secret(shares[:2], 3)
    with pytest.raises(InsufficientSharesError):
        reconstruct_secret([], 1)


@pytest.mark.parametrize("threshold", [0, -3])
def test_reconstruct_bad_threshold(threshold: int) -> None:
    shares = split_secret(os.urandom(32), range(1, 4), 2)
    with pytest.raises(ConfigError):
        reconstruct_secret(shares, threshold)


def test_reconstruct_duplicate_points() -> None:
    shares = split_secret(os.urandom(32), range(1, 4), 2)
    with pytest.raises(ShareError):
        reconstruct_secret([shares[0], shares[1], shares[0]], 2)
    twin = tampered(shares[0], 0, 1)
    with pytest.raises(ShareError):
        reconstruct_secret([shares[0], twin, shares[1]], 2)


@pytest.mark.parametrize("x", [0, -1, PRIME, PRIME + 1])
def test_share_point_out_of_range(x: int) -> None:
    with pytest.raises(ShareError):
        Share(x, (0,) * LIMBS)


@pytest.mark.parametrize("values", [(0,) * 15, (0,) * 17, (PRIME,) + (0,) * 15, (-1,) + (0,) * 15])
def test_share_values_out_of_range(values: tuple[int, ...]) -> None:
    with pytest.raises(ShareError) as info:
        Share(1, values)
    assert str(values) not in str(info.value)


@pytest.mark.parametrize("size", [0, 67, 69])
def test_share_decoding_wrong_length(size: int) -> None:
    with pytest.raises(ShareError):
        Share.from_bytes(bytes(size))


def test_share_decoding_out_of_range() -> None:
    with pytest.raises(ShareError):
        Share.from_bytes(b"\xff" * SHARE_BYTES)


def test_exactly_t_corrupt_shares_never_yield_the_real_secret_silently() -> None:
    """With m == t nothing can be checked; a corrupt share gives an error or another secret."""
    secret = bytes(32)
    shares = split_secret(secret, range(1, 4), 3)
    shares[1] = tampered(shares[1], 0, 1)
    try:
        got = reconstruct_secret(shares, 3)
    except InconsistentSharesError:
        return
    assert got != secret


def test_messages_never_contain_share_values() -> None:
    secret = os.urandom(32)
    shares = split_secret(secret, range(1, 8), 3)
    shares[2] = tampered(shares[2], 1, 12345)
    with pytest.raises(SecAggError) as info:
        reconstruct_secret(shares, 3)
    text = str(info.value)
    assert secret.hex() not in text
    for share in shares:
        assert share.to_bytes().hex() not in text
        assert all(str(v) not in text for v in share.values if v > 1000)
