"""HKDF-SHA256 key derivation: RFC 5869 vectors, the PROTOCOL.md info layout, misuse."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.kdf import INDEX_BYTES, Label, derive_key, kdf_info
from secagg.errors import ConfigError, InvalidKeyError, SecAggError

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
RFC5869 = VECTORS["hkdf_sha256_rfc5869"]


def reference_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with hmac/hashlib, independent of the module under test."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


@pytest.mark.parametrize("vector", RFC5869, ids=lambda v: f"case{v['case']}")
def test_reference_hkdf_matches_rfc5869(vector: dict[str, object]) -> None:
    ikm, salt, info = (bytes.fromhex(str(vector[k])) for k in ("ikm", "salt", "info"))
    length = int(str(vector["length"]))
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    assert prk.hex() == vector["prk"]
    assert reference_hkdf(ikm, salt, info, length).hex() == vector["okm"]


@pytest.mark.parametrize("vector", RFC5869, ids=lambda v: f"case{v['case']}")
def test_library_hkdf_matches_rfc5869(vector: dict[str, object]) -> None:
    """The HKDF implementation derive_key is built on, with the standard's own inputs."""
    ikm, salt, info = (bytes.fromhex(str(vector[k])) for k in ("ikm", "salt", "info"))
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=int(str(vector["length"])),
        salt=salt or None,
        info=info,
    )
    assert hkdf.derive(ikm).hex() == vector["okm"]


def test_labels_are_the_protocol_strings() -> None:
    assert {label.value for label in Label} == {
        "secagg/v1/enc",
        "secagg/v1/pair-mask",
        "secagg/v1/self-mask",
    }


def test_info_layout_is_label_then_big_endian_u32_indices() -> None:
    assert INDEX_BYTES == 4
    assert kdf_info(Label.ENC) == b"secagg/v1/enc"
    assert kdf_info(Label.PAIR_MASK, 1, 2) == (
        b"secagg/v1/pair-mask" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x02"
    )
    assert kdf_info(Label.SELF_MASK, 0x01020304) == b"secagg/v1/self-mask\x01\x02\x03\x04"
    assert kdf_info(Label.ENC, 0, 2**32 - 1) == b"secagg/v1/enc" + bytes(4) + b"\xff" * 4


@pytest.mark.parametrize("index", [-1, 2**32, 2**40])
def test_info_rejects_out_of_range_indices(index: int) -> None:
    with pytest.raises(InvalidKeyError):
        kdf_info(Label.ENC, 1, index)


SECRET = bytes(range(100, 132))
SESSION = bytes(range(32))


@pytest.mark.parametrize("label", list(Label))
@pytest.mark.parametrize("indices", [(), (7,), (3, 9), (2**32 - 1, 0, 5)])
@pytest.mark.parametrize("length", [16, 32, 64])
def test_derive_key_is_hkdf_with_session_salt_and_info_layout(
    label: Label, indices: tuple[int, ...], length: int
) -> None:
    info = label.value.encode("ascii") + b"".join(i.to_bytes(4, "big") for i in indices)
    expected = reference_hkdf(SECRET, SESSION, info, length)
    assert derive_key(SECRET, SESSION, label, *indices, length=length) == expected


def test_derive_key_default_length_is_32() -> None:
    assert len(derive_key(SECRET, SESSION, Label.ENC, 1, 2)) == 32


def test_derive_key_regression_vector() -> None:
    """Frozen output (computed with the RFC-checked reference above) to catch layout drift."""
    vector = VECTORS["secagg_kdf_regression"]
    got = derive_key(
        bytes.fromhex(vector["secret"]),
        bytes.fromhex(vector["session_id"]),
        Label(vector["label"]),
        *vector["indices"],
        length=vector["length"],
    )
    assert got.hex() == vector["key"]


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=64),
    session=st.binary(min_size=32, max_size=32),
    label=st.sampled_from(list(Label)),
    indices=st.lists(st.integers(0, 2**32 - 1), max_size=3),
    length=st.integers(1, 255 * 32),
)
def test_derive_key_matches_reference_property(
    secret: bytes, session: bytes, label: Label, indices: list[int], length: int
) -> None:
    expected = reference_hkdf(secret, session, kdf_info(label, *indices), length)
    assert derive_key(secret, session, label, *indices, length=length) == expected


def test_domain_separation() -> None:
    keys = {
        derive_key(SECRET, SESSION, Label.PAIR_MASK, 1, 2),
        derive_key(SECRET, SESSION, Label.PAIR_MASK, 2, 1),
        derive_key(SECRET, SESSION, Label.SELF_MASK, 1, 2),
        derive_key(SECRET, SESSION, Label.ENC, 1, 2),
        derive_key(SECRET, bytes(32), Label.PAIR_MASK, 1, 2),
        derive_key(SECRET[:-1] + b"\x00", SESSION, Label.PAIR_MASK, 1, 2),
        derive_key(SECRET, SESSION, Label.PAIR_MASK, 1),
        derive_key(SECRET, SESSION, Label.PAIR_MASK, 1, 2, 0),
    }
    assert len(keys) == 8


@pytest.mark.parametrize("size", [0, 1, 15])
def test_derive_key_rejects_short_secret_without_echoing_it(size: int) -> None:
    secret = bytes(range(0xA0, 0xA0 + size))
    with pytest.raises(InvalidKeyError) as info:
        derive_key(secret, SESSION, Label.ENC)
    if secret:
        assert secret.hex() not in str(info.value)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_derive_key_rejects_bad_session_id(size: int) -> None:
    with pytest.raises(InvalidKeyError) as info:
        derive_key(SECRET, bytes(size), Label.ENC)
    assert SECRET.hex() not in str(info.value)


@pytest.mark.parametrize("length", [0, -1, 255 * 32 + 1])
def test_derive_key_rejects_impossible_lengths_with_a_typed_error(length: int) -> None:
    with pytest.raises(SecAggError) as info:
        derive_key(SECRET, SESSION, Label.ENC, length=length)
    assert isinstance(info.value, ConfigError)
    assert SECRET.hex() not in str(info.value)
