"""Randomness sources: the system CSPRNG and the seeded, reproducible AES-256-CTR stream."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.crypto.entropy import (
    DeterministicRandom,
    RandomSource,
    SystemRandom,
    default_random,
)


def reference_stream(seed: bytes, n: int) -> bytes:
    key = hashlib.sha256(b"secagg/v1/deterministic-random" + seed).digest()
    return Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(n))


@pytest.mark.parametrize("n", [0, 1, 16, 1000])
def test_system_random_lengths(n: int) -> None:
    assert len(SystemRandom().random_bytes(n)) == n


def test_system_random_is_not_constant() -> None:
    source = default_random()
    assert source.random_bytes(32) != source.random_bytes(32)
    assert default_random() is source


def test_sources_satisfy_the_protocol() -> None:
    assert isinstance(SystemRandom(), RandomSource)
    assert isinstance(DeterministicRandom(0), RandomSource)
    assert not isinstance(object(), RandomSource)


def test_deterministic_stream_is_aes256_ctr_of_hashed_seed() -> None:
    rng = DeterministicRandom(b"seed")
    first, second = rng.random_bytes(5), rng.random_bytes(40)
    assert first + second == reference_stream(b"seed", 45)


def test_seed_types() -> None:
    assert DeterministicRandom("abc").random_bytes(16) == reference_stream(b"abc", 16)
    for value in (0, 1, -1, 2**100):
        encoded = value.to_bytes(16, "big", signed=True)
        assert DeterministicRandom(value).random_bytes(16) == reference_stream(encoded, 16)
    assert DeterministicRandom("0").random_bytes(16) == DeterministicRandom(b"0").random_bytes(16)
    outputs = {DeterministicRandom(s).random_bytes(16) for s in (0, 1, -1, b"0", b"")}
    assert len(outputs) == 5


def test_reproducible_and_seed_sensitive() -> None:
    assert DeterministicRandom(7).random_bytes(64) == DeterministicRandom(7).random_bytes(64)
    assert DeterministicRandom(7).random_bytes(64) != DeterministicRandom(8).random_bytes(64)


def test_fork_is_reproducible_and_independent() -> None:
    a, b = DeterministicRandom(1), DeterministicRandom(1)
    fa, fb = a.fork("client-3"), b.fork("client-3")
    assert fa.random_bytes(32) == fb.random_bytes(32)
    assert a.random_bytes(32) == b.random_bytes(32)  # parents stay in lock-step
    other = DeterministicRandom(1).fork("client-4").random_bytes(32)
    assert other != DeterministicRandom(1).fork("client-3").random_bytes(32)
    d = DeterministicRandom(1)
    child = d.fork("x")
    assert child.random_bytes(32) != d.random_bytes(32)
