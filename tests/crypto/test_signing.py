"""Ed25519 identity keys: RFC 8032 section 7.1 tests 1-3, misuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.signing import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    SigningKey,
    verify_signature,
)
from secagg.errors import CryptoError, InvalidKeyError, SignatureError

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
RFC8032 = VECTORS["ed25519_rfc8032_7_1"]
# Order of the Ed25519 base point (RFC 8032 section 5.1).
L = 2**252 + 27742317777372353535851937790883648493


def _case(vector: dict[str, object]) -> tuple[bytes, bytes, bytes, bytes]:
    return tuple(  # type: ignore[return-value]
        bytes.fromhex(str(vector[k])) for k in ("secret", "public", "message", "signature")
    )


@pytest.mark.parametrize("vector", RFC8032, ids=lambda v: f"test{v['test']}")
def test_rfc8032_known_answers(vector: dict[str, object]) -> None:
    secret, public, message, signature = _case(vector)
    key = SigningKey.from_seed(secret)
    assert key.public_bytes == public
    assert key.sign(message) == signature
    verify_signature(public, signature, message)


@pytest.mark.parametrize("vector", RFC8032, ids=lambda v: f"test{v['test']}")
def test_rfc8032_tampering_is_rejected(vector: dict[str, object]) -> None:
    secret, public, message, signature = _case(vector)
    for position in (0, 31, 32, 63):
        bad = bytearray(signature)
        bad[position] ^= 0x04
        with pytest.raises(SignatureError):
            verify_signature(public, bytes(bad), message)
    with pytest.raises(SignatureError):
        verify_signature(public, signature, message + b"\x00")
    other = SigningKey.from_seed(bytes(32)).public_bytes
    with pytest.raises(SignatureError) as info:
        verify_signature(other, signature, message)
    assert secret.hex() not in str(info.value)


def test_non_canonical_s_is_rejected() -> None:
    """S + L verifies the same equation but RFC 8032 requires S < L (no malleability)."""
    _, public, message, signature = _case(RFC8032[0])
    s = int.from_bytes(signature[32:], "little") + L
    assert s < 2**256
    with pytest.raises(SignatureError):
        verify_signature(public, signature[:32] + s.to_bytes(32, "little"), message)


def test_round_trip_and_seed() -> None:
    key = SigningKey.generate()
    assert len(key.public_bytes) == PUBLIC_KEY_BYTES
    signature = key.sign(b"canonical bytes")
    assert len(signature) == SIGNATURE_BYTES
    verify_signature(key.public_bytes, signature, b"canonical bytes")
    assert SigningKey.from_seed(key.seed()).public_bytes == key.public_bytes


def test_generate_uses_the_given_random_source() -> None:
    a = SigningKey.generate(DeterministicRandom("id"))
    b = SigningKey.generate(DeterministicRandom("id"))
    assert a.seed() == b.seed()
    assert a.public_bytes != SigningKey.generate(DeterministicRandom("other")).public_bytes


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_seed_length(size: int) -> None:
    seed = bytes(range(0x90, 0x90 + size))
    with pytest.raises(InvalidKeyError) as info:
        SigningKey.from_seed(seed)
    if seed:
        assert seed.hex() not in str(info.value)


def test_seed_must_be_bytes() -> None:
    with pytest.raises(InvalidKeyError):
        SigningKey.from_seed(bytearray(32))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_public_key_length(size: int) -> None:
    _, _, message, signature = _case(RFC8032[0])
    with pytest.raises(InvalidKeyError):
        verify_signature(bytes(size), signature, message)


@pytest.mark.parametrize("size", [0, 63, 65, 128])
def test_wrong_signature_length(size: int) -> None:
    _, public, message, _ = _case(RFC8032[0])
    with pytest.raises(SignatureError):
        verify_signature(public, bytes(size), message)


def test_non_bytes_inputs() -> None:
    _, public, message, signature = _case(RFC8032[0])
    with pytest.raises(InvalidKeyError):
        verify_signature(bytearray(public), signature, message)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_signature(public, bytearray(signature), message)  # type: ignore[arg-type]


def test_public_key_that_is_not_a_point_is_refused_with_a_typed_error() -> None:
    _, _, message, signature = _case(RFC8032[0])
    # y = 2 has no x on edwards25519 (x^2 would be a non-square); all-ones is out of range.
    for public in (b"\x02" + bytes(31), b"\xff" * 32):
        with pytest.raises(CryptoError):
            verify_signature(public, signature, message)


def test_repr_does_not_show_the_seed() -> None:
    key = SigningKey.generate()
    assert key.seed().hex()[:16] not in repr(key)
    assert key.public_bytes.hex()[:16] in repr(key)
