"""AES-256-GCM seal/open: McGrew-Viega (NIST GCM spec) test cases 13-16, misuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.aead import KEY_BYTES, NONCE_BYTES, OVERHEAD, TAG_BYTES, open_sealed, seal
from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import DecryptionError, InvalidKeyError

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
GCM = VECTORS["aes256_gcm_mcgrew_viega"]
MESSAGE = "ciphertext failed authentication"


class FixedRandom:
    """A RandomSource that hands out preset bytes (to pin the nonce)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def random_bytes(self, n: int) -> bytes:
        out, self._data = self._data[:n], self._data[n:]
        assert len(out) == n
        return out


def _hex(vector: dict[str, object], name: str) -> bytes:
    return bytes.fromhex(str(vector[name]))


@pytest.mark.parametrize("vector", GCM, ids=lambda v: f"case{v['case']}")
def test_open_known_answer(vector: dict[str, object]) -> None:
    blob = _hex(vector, "iv") + _hex(vector, "ciphertext") + _hex(vector, "tag")
    assert open_sealed(_hex(vector, "key"), blob, _hex(vector, "aad")) == _hex(vector, "plaintext")


@pytest.mark.parametrize("vector", GCM, ids=lambda v: f"case{v['case']}")
def test_seal_known_answer(vector: dict[str, object]) -> None:
    sealed = seal(
        _hex(vector, "key"),
        _hex(vector, "plaintext"),
        _hex(vector, "aad"),
        rng=FixedRandom(_hex(vector, "iv")),
    )
    assert sealed == _hex(vector, "iv") + _hex(vector, "ciphertext") + _hex(vector, "tag")


def test_layout_constants() -> None:
    assert (KEY_BYTES, NONCE_BYTES, TAG_BYTES, OVERHEAD) == (32, 12, 16, 28)


KEY = bytes(range(32))


def test_round_trip_and_fresh_nonces() -> None:
    a = seal(KEY, b"hello", b"aad")
    b = seal(KEY, b"hello", b"aad")
    assert a[:NONCE_BYTES] != b[:NONCE_BYTES]
    assert len(a) == 5 + OVERHEAD
    assert open_sealed(KEY, a, b"aad") == open_sealed(KEY, b, b"aad") == b"hello"


def test_seal_uses_the_given_random_source() -> None:
    first = seal(KEY, b"x", b"", DeterministicRandom(1))
    assert first == seal(KEY, b"x", b"", DeterministicRandom(1))


def _assert_uniform_failure(key: bytes, blob: object, aad: bytes) -> None:
    with pytest.raises(DecryptionError) as info:
        open_sealed(key, blob, aad)  # type: ignore[arg-type]
    assert str(info.value) == MESSAGE
    assert info.value.__cause__ is None
    assert KEY.hex() not in str(info.value)


SEALED = seal(KEY, b"attack at dawn", b"header", DeterministicRandom(b"aead"))


@pytest.mark.parametrize("position", [0, NONCE_BYTES - 1, NONCE_BYTES, len(SEALED) - 1])
def test_tampered_blob_fails_uniformly(position: int) -> None:
    blob = bytearray(SEALED)
    blob[position] ^= 0x01
    _assert_uniform_failure(KEY, bytes(blob), b"header")


@pytest.mark.parametrize("aad", [b"", b"Header", b"header\x00", b"heade"])
def test_wrong_aad_fails_uniformly(aad: bytes) -> None:
    _assert_uniform_failure(KEY, SEALED, aad)


@pytest.mark.parametrize("size", [0, 1, NONCE_BYTES, OVERHEAD - 1, OVERHEAD, len(SEALED) - 1])
def test_truncated_blob_fails_uniformly(size: int) -> None:
    _assert_uniform_failure(KEY, SEALED[:size], b"header")


def test_extended_blob_fails_uniformly() -> None:
    _assert_uniform_failure(KEY, SEALED + b"\x00", b"header")


def test_wrong_key_fails_uniformly() -> None:
    _assert_uniform_failure(bytes(32), SEALED, b"header")
    _assert_uniform_failure(KEY[::-1], SEALED, b"header")


@pytest.mark.parametrize("blob", [bytearray(SEALED), memoryview(SEALED), None, SEALED.hex()])
def test_non_bytes_blob_fails_uniformly(blob: object) -> None:
    _assert_uniform_failure(KEY, blob, b"header")


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_wrong_key_length(size: int) -> None:
    key = bytes(range(0x60, 0x60 + size))
    for call in (lambda: seal(key, b"m", b""), lambda: open_sealed(key, SEALED, b"header")):
        with pytest.raises(InvalidKeyError) as info:
            call()
        if key:
            assert key.hex() not in str(info.value)


def test_key_must_be_bytes() -> None:
    with pytest.raises(InvalidKeyError):
        seal(bytearray(KEY), b"m", b"")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    plaintext=st.binary(max_size=200),
    aad=st.binary(max_size=64),
    data=st.data(),
)
def test_any_single_bit_flip_is_rejected(plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    sealed = seal(KEY, plaintext, aad)
    assert open_sealed(KEY, sealed, aad) == plaintext
    bit = data.draw(st.integers(0, 8 * len(sealed) - 1))
    blob = bytearray(sealed)
    blob[bit // 8] ^= 1 << (bit % 8)
    _assert_uniform_failure(KEY, bytes(blob), aad)
