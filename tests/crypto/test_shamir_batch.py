"""Batched Shamir: split_secrets / reconstruct_secrets equal the one-secret functions."""

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
    Share,
    reconstruct_secret,
    reconstruct_secrets,
    split_secret,
    split_secrets,
)
from secagg.errors import (
    ConfigError,
    InconsistentSharesError,
    InsufficientSharesError,
    ShareError,
)


def tampered(share: Share, limb: int, delta: int) -> Share:
    values = list(share.values)
    values[limb] = (values[limb] + delta) % PRIME
    return Share(share.x, tuple(values))


def one_by_one(groups: list[list[Share]], t: int) -> list[bytes | ShareError]:
    out: list[bytes | ShareError] = []
    for shares in groups:
        try:
            out.append(reconstruct_secret(shares, t))
        except ShareError as exc:
            out.append(exc)
    return out


def assert_same(batched: list[bytes | ShareError], reference: list[bytes | ShareError]) -> None:
    """Same secret, or the same error type, message and named bad points."""
    assert len(batched) == len(reference)
    for got, want in zip(batched, reference, strict=True):
        if isinstance(want, bytes):
            assert got == want
        else:
            assert type(got) is type(want)
            assert str(got) == str(want)
            if isinstance(want, InconsistentSharesError):
                assert isinstance(got, InconsistentSharesError)
                assert got.bad_points == want.bad_points


@st.composite
def rounds(draw: st.DrawFn) -> tuple[int, list[list[Share]], list[bytes]]:
    """A threshold and groups of shares as a server receives them: some groups over one shared
    holder set (complete graph), others over their own; shuffled, some truncated, some
    tampered, some with a repeated point."""
    t = draw(st.integers(1, 12))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    common = rnd.sample(range(1, PRIME), t + rnd.randrange(0, 8))
    groups: list[list[Share]] = []
    secrets: list[bytes] = []
    for _ in range(draw(st.integers(1, 12))):
        holders = common if rnd.random() < 0.5 else rnd.sample(range(1, 200), t + rnd.randrange(8))
        secret = rnd.randbytes(SECRET_BYTES)
        shares = split_secret(secret, holders, t, DeterministicRandom(rnd.randrange(2**32)))
        rnd.shuffle(shares)
        kind = draw(st.sampled_from(["clean", "clean", "fewer", "tampered", "tampered", "dup"]))
        if kind == "fewer":
            shares = shares[: rnd.randrange(0, len(shares) + 1)]
        elif kind == "tampered":
            for i in rnd.sample(range(len(shares)), rnd.randrange(1, min(3, len(shares)) + 1)):
                shares[i] = tampered(shares[i], rnd.randrange(LIMBS), rnd.randrange(1, PRIME))
        elif kind == "dup" and len(shares) > 1:
            shares[-1] = tampered(shares[0], 0, 1)
        groups.append(shares)
        secrets.append(secret)
    return t, groups, secrets


@settings(max_examples=200, deadline=None)
@given(case=rounds())
def test_batched_reconstruction_equals_one_by_one(
    case: tuple[int, list[list[Share]], list[bytes]],
) -> None:
    t, groups, _ = case
    assert_same(reconstruct_secrets(groups, t), one_by_one(groups, t))


@settings(max_examples=100, deadline=None)
@given(
    t=st.integers(1, 20),
    spare=st.integers(0, 10),
    count=st.integers(1, 30),
    shared_holders=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_batched_reconstruction_recovers_every_clean_secret(
    t: int, spare: int, count: int, shared_holders: bool, seed: int
) -> None:
    rnd = random.Random(seed)
    common = rnd.sample(range(1, PRIME), t + spare)
    secrets = [rnd.randbytes(SECRET_BYTES) for _ in range(count)]
    groups = [
        split_secret(s, common if shared_holders else rnd.sample(range(1, PRIME), t + spare), t)
        for s in secrets
    ]
    assert reconstruct_secrets(groups, t) == secrets


def test_one_bad_share_is_named_like_the_reference() -> None:
    """Among many clean dealers, the one with a tampered share gets the reference's error."""
    rnd = random.Random(7)
    secrets = [os.urandom(32) for _ in range(50)]
    groups = [split_secret(s, rnd.sample(range(1, 500), 30), 19) for s in secrets]
    groups[17][4] = tampered(groups[17][4], 3, 99)
    got = reconstruct_secrets(groups, 19)
    assert [g for i, g in enumerate(got) if i != 17] == secrets[:17] + secrets[18:]
    error = got[17]
    assert isinstance(error, InconsistentSharesError)
    assert error.bad_points == (groups[17][4].x,)


def test_corrupt_limbs_outside_16_bits_are_rejected() -> None:
    """Consistent shares of a non-16-bit 'secret' (a forged polynomial) raise, as one by one."""
    points = [3, 9, 12, 40]
    forged = [Share(x, (PRIME - 1,) * LIMBS) for x in points]  # constant polynomial p - 1
    got = reconstruct_secrets([forged, split_secret(bytes(32), points, 2)], 2)
    assert isinstance(got[0], InconsistentSharesError)
    assert got[1] == bytes(32)
    assert_same(got, one_by_one([forged, split_secret(bytes(32), points, 2)], 2))


def test_errors_per_group_and_misuse() -> None:
    shares = split_secret(os.urandom(32), [1, 2, 3], 2)
    got = reconstruct_secrets([shares[:1], [shares[0], shares[0]], []], 2)
    assert isinstance(got[0], InsufficientSharesError)
    assert isinstance(got[1], ShareError)
    assert not isinstance(got[1], InconsistentSharesError)
    assert isinstance(got[2], InsufficientSharesError)
    assert reconstruct_secrets([], 3) == []
    with pytest.raises(ConfigError):
        reconstruct_secrets([shares], 0)


@settings(max_examples=50, deadline=None)
@given(
    count=st.integers(0, 4),
    t=st.integers(1, 10),
    extra=st.integers(0, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_secrets_equals_split_secret_in_turn(
    count: int, t: int, extra: int, seed: int
) -> None:
    """Same random source, same draws: identical shares to one split_secret per secret."""
    rnd = random.Random(seed)
    secrets = [rnd.randbytes(SECRET_BYTES) for _ in range(count)]
    points = rnd.sample(range(1, PRIME), t + extra)
    batched = split_secrets(secrets, points, t, DeterministicRandom(seed))
    source = DeterministicRandom(seed)
    assert batched == [split_secret(s, points, t, source) for s in secrets]
    for secret, shares in zip(secrets, batched, strict=True):
        assert reconstruct_secret(shares, t) == secret


def test_split_secrets_validates_like_split_secret() -> None:
    with pytest.raises(ShareError):
        split_secrets([bytes(32), bytes(31)], [1, 2], 2)
    with pytest.raises(ShareError):
        split_secrets([bytes(32)], [1, 1], 2)
    with pytest.raises(ConfigError):
        split_secrets([bytes(32)], [1, 2], 3)


def test_decoded_shares_keep_their_encoding() -> None:
    share = split_secret(os.urandom(32), [5, 6], 2)[0]
    data = share.to_bytes()
    decoded = Share.from_bytes(data)
    assert decoded == share
    assert hash(decoded) == hash(share)
    assert decoded.to_bytes() == data
    assert repr(decoded) == "Share(x=5)"
