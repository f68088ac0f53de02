"""X25519 key pairs: RFC 7748 vectors, low-order point rejection, misuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secagg.crypto import keys
from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.keys import KEY_BYTES, X25519KeyPair, validate_public_key
from secagg.errors import CryptoError, InvalidKeyError, KeyAgreementError

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
LOW_ORDER = VECTORS["x25519_low_order"]


@pytest.mark.parametrize("vector", VECTORS["x25519_rfc7748_5_2"], ids=["vector1", "vector2"])
def test_rfc7748_section_5_2(vector: dict[str, str]) -> None:
    pair = X25519KeyPair.from_private_bytes(bytes.fromhex(vector["scalar"]))
    assert pair.exchange(bytes.fromhex(vector["u"])).hex() == vector["output"]


def test_rfc7748_section_5_2_iterated() -> None:
    vector = VECTORS["x25519_rfc7748_5_2_iterated"]
    k = u = bytes.fromhex(vector["start"])
    for i in range(1, 1001):
        k, u = X25519KeyPair.from_private_bytes(k).exchange(u), k
        if i == 1:
            assert k.hex() == vector["after_1"]
    assert k.hex() == vector["after_1000"]


def test_rfc7748_section_6_1_diffie_hellman() -> None:
    v = VECTORS["x25519_rfc7748_6_1"]
    alice = X25519KeyPair.from_private_bytes(bytes.fromhex(v["alice_private"]))
    bob = X25519KeyPair.from_private_bytes(bytes.fromhex(v["bob_private"]))
    assert alice.public_bytes.hex() == v["alice_public"]
    assert bob.public_bytes.hex() == v["bob_public"]
    assert alice.exchange(bob.public_bytes).hex() == v["shared"]
    assert bob.exchange(alice.public_bytes).hex() == v["shared"]


def test_private_bytes_round_trip() -> None:
    private = bytes.fromhex(VECTORS["x25519_rfc7748_6_1"]["alice_private"])
    pair = X25519KeyPair.from_private_bytes(private)
    assert pair.private_bytes() == private
    assert X25519KeyPair.from_private_bytes(pair.private_bytes()).public_bytes == pair.public_bytes


def test_generate_uses_the_given_random_source() -> None:
    a = X25519KeyPair.generate(DeterministicRandom(b"seed"))
    b = X25519KeyPair.generate(DeterministicRandom(b"seed"))
    c = X25519KeyPair.generate(DeterministicRandom(b"other"))
    assert a.public_bytes == b.public_bytes != c.public_bytes
    assert len(a.public_bytes) == KEY_BYTES


def test_generate_default_source_agrees() -> None:
    a, b = X25519KeyPair.generate(), X25519KeyPair.generate()
    assert a.public_bytes != b.public_bytes
    assert a.exchange(b.public_bytes) == b.exchange(a.public_bytes)


def test_blocklist_is_the_known_low_order_set() -> None:
    assert {bytes.fromhex(h) for h in LOW_ORDER["blocked"]} == set(keys._LOW_ORDER_POINTS)


@pytest.mark.parametrize("point", LOW_ORDER["blocked"])
def test_low_order_public_keys_are_rejected(point: str) -> None:
    public = bytes.fromhex(point)
    with pytest.raises(InvalidKeyError, match="low-order"):
        validate_public_key(public)
    pair = X25519KeyPair.generate(DeterministicRandom(point))
    with pytest.raises(InvalidKeyError) as info:
        pair.exchange(public)
    assert pair.private_bytes().hex() not in str(info.value)


@pytest.mark.parametrize("point", LOW_ORDER["high_bit_twins"])
def test_low_order_twins_with_bit_255_set_are_refused(point: str) -> None:
    """X25519 ignores bit 255, so these encode low-order points too and are refused up front."""
    public = bytes.fromhex(point)
    with pytest.raises(InvalidKeyError, match="low-order"):
        validate_public_key(public)
    pair = X25519KeyPair.generate(DeterministicRandom(point))
    with pytest.raises(InvalidKeyError) as info:
        pair.exchange(public)
    assert pair.private_bytes().hex() not in str(info.value)


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_wrong_length_private_key(size: int) -> None:
    private = bytes(range(0x80, 0x80 + size))
    with pytest.raises(InvalidKeyError) as info:
        X25519KeyPair.from_private_bytes(private)
    if private:
        assert private.hex() not in str(info.value)


@pytest.mark.parametrize("value", [bytearray(32), memoryview(bytes(32)), "a" * 32, None, 7])
def test_private_key_must_be_bytes(value: object) -> None:
    with pytest.raises(InvalidKeyError):
        X25519KeyPair.from_private_bytes(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_wrong_length_public_key(size: int) -> None:
    pair = X25519KeyPair.generate()
    public = bytes(range(0x40, 0x40 + size))
    with pytest.raises(InvalidKeyError) as info:
        pair.exchange(public)
    assert f"got {size}" in str(info.value)
    assert pair.private_bytes().hex() not in str(info.value)


@pytest.mark.parametrize("value", [bytearray(32), "x" * 32, None])
def test_public_key_must_be_bytes(value: object) -> None:
    with pytest.raises(InvalidKeyError):
        validate_public_key(value)  # type: ignore[arg-type]


def test_errors_are_crypto_errors() -> None:
    assert issubclass(InvalidKeyError, CryptoError)
    assert issubclass(KeyAgreementError, CryptoError)


def test_repr_does_not_show_the_private_key() -> None:
    pair = X25519KeyPair.generate()
    text = repr(pair)
    assert pair.private_bytes().hex() not in text
    assert pair.private_bytes().hex()[:16] not in text
    assert pair.public_bytes.hex()[:16] in text
