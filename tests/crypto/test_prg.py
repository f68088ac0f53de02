"""The mask PRG: AES-128-CTR, IV zero, little-endian words masked to b bits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.prg import (
    CHUNK_BYTES,
    PRG_KEY_BYTES,
    MaskPRG,
    add_masks,
    expand_mask,
)
from secagg.crypto.ring import check_bits, ring_mask, word_dtype
from secagg.errors import ConfigError, InvalidKeyError

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
SP800_38A = VECTORS["aes128_ctr_sp800_38a_f_5_1"]
BITS = [1, 16, 31, 32, 33, 63, 64]
KEY = bytes.fromhex(SP800_38A["key"])

keys16 = st.binary(min_size=16, max_size=16)


def reference_keystream(key: bytes, nbytes: int) -> bytes:
    """AES-ECB of the big-endian counter blocks 0, 1, 2, ...: CTR mode with IV zero."""
    blocks = -(-nbytes // 16)
    counters = b"".join(i.to_bytes(16, "big") for i in range(blocks))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return (ecb.update(counters) + ecb.finalize())[:nbytes]


def reference_mask(key: bytes, dim: int, bits: int) -> list[int]:
    """The mask as Python ints: little-endian words of the keystream, reduced mod 2^b."""
    size = 4 if bits <= 32 else 8
    stream = reference_keystream(key, dim * size)
    return [
        int.from_bytes(stream[i * size : (i + 1) * size], "little") % (1 << bits)
        for i in range(dim)
    ]


def random_acc(rng: np.random.Generator, dim: int, bits: int) -> npt.NDArray[np.uint64]:
    dtype = word_dtype(bits)
    words = rng.integers(0, 2**64, size=dim, dtype=np.uint64)
    return (words & np.uint64(ring_mask(bits))).astype(dtype)  # type: ignore[no-any-return]


# ---- known answers -------------------------------------------------------------------------


def test_sp800_38a_f_5_1_ctr_mode() -> None:
    """The CTR mode the PRG is built on, with the standard's own counter block."""
    enc = Cipher(algorithms.AES(KEY), modes.CTR(bytes.fromhex(SP800_38A["init_counter"])))
    ct = enc.encryptor().update(bytes.fromhex("".join(SP800_38A["plaintext"])))
    assert ct.hex() == "".join(SP800_38A["ciphertext"])


def test_sp800_38a_f_5_1_output_blocks_via_ecb() -> None:
    """The reference construction (ECB of counter blocks) gives the standard's output blocks."""
    ecb = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor()
    start = int(SP800_38A["init_counter"], 16)
    blocks = [ecb.update((start + i).to_bytes(16, "big")).hex() for i in range(4)]
    assert blocks == SP800_38A["output_blocks"]


@pytest.mark.parametrize("bits", BITS)
def test_expand_mask_matches_independent_keystream(bits: int) -> None:
    dim = 1000
    got = expand_mask(KEY, dim, bits)
    assert got.dtype == word_dtype(bits)
    assert got.shape == (dim,)
    assert got.tolist() == reference_mask(KEY, dim, bits)


def test_first_words_pinned() -> None:
    """First words for the SP 800-38A key and IV zero: AES_K(0^128) read little-endian."""
    block0 = reference_keystream(KEY, 16)
    assert expand_mask(KEY, 4, 32).tolist() == [
        int.from_bytes(block0[i : i + 4], "little") for i in range(0, 16, 4)
    ]
    assert expand_mask(KEY, 2, 64).tolist() == [
        int.from_bytes(block0[i : i + 8], "little") for i in range(0, 16, 8)
    ]


@pytest.mark.parametrize("bits", [16, 32, 64])
@pytest.mark.parametrize("chunk_bytes", [1, 7, 16, 20, 4096, CHUNK_BYTES])
def test_chunking_does_not_change_output(bits: int, chunk_bytes: int) -> None:
    dim = 777
    expected = reference_mask(KEY, dim, bits)
    prg = MaskPRG(bits, chunk_bytes=chunk_bytes)
    out = np.empty(dim, dtype=word_dtype(bits))
    prg.fill(KEY, out)
    assert out.tolist() == expected
    acc = np.zeros(dim, dtype=word_dtype(bits))
    prg.add_into(acc, KEY)
    assert acc.tolist() == expected


def test_chunk_boundary_crossing_at_default_chunk_size() -> None:
    dim = CHUNK_BYTES // 4 + 5
    expected = np.frombuffer(reference_keystream(KEY, 4 * dim), dtype="<u4")
    acc = np.zeros(dim, dtype=np.uint32)
    MaskPRG(32).add_into(acc, KEY)
    assert np.array_equal(acc, expected)


def test_empty_dimension() -> None:
    assert expand_mask(KEY, 0, 32).shape == (0,)
    acc = np.zeros(0, dtype=np.uint64)
    MaskPRG(64).add_into(acc, KEY)
    add_masks(acc, 64, [KEY], [KEY])


# ---- properties ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(key=keys16, other=keys16, bits=st.sampled_from(BITS), dim=st.integers(1, 300))
def test_deterministic_per_key_and_distinct_across_keys(
    key: bytes, other: bytes, bits: int, dim: int
) -> None:
    a = expand_mask(key, dim, bits)
    assert np.array_equal(a, expand_mask(key, dim, bits))
    if other != key and bits >= 16 and dim >= 8:
        # 8 words of >= 16 bits each collide with probability <= 2^-128.
        assert not np.array_equal(a, expand_mask(other, dim, bits))


@settings(max_examples=30, deadline=None)
@given(key=keys16, bits=st.sampled_from(BITS), dim=st.integers(0, 300))
def test_values_below_two_to_the_b(key: bytes, bits: int, dim: int) -> None:
    mask = expand_mask(key, dim, bits)
    assert mask.dtype == word_dtype(bits)
    assert all(int(v) < 2**bits for v in mask.tolist())


# Small chunks make chunk-boundary crossings cheap; dims include 0, 1 and multi-chunk sizes.
dims = st.one_of(st.sampled_from([0, 1, 2, 15, 16, 17, 63, 64, 65]), st.integers(0, 400))
chunks = st.sampled_from([8, 16, 24, 64, 100, 256])


@settings(max_examples=200, deadline=None)
@given(
    key=keys16,
    bits=st.sampled_from(BITS),
    dim=dims,
    chunk=chunks,
    seed=st.integers(0, 2**32 - 1),
)
def test_add_then_subtract_is_identity(
    key: bytes, bits: int, dim: int, chunk: int, seed: int
) -> None:
    prg = MaskPRG(bits, chunk_bytes=chunk)
    acc = random_acc(np.random.default_rng(seed), dim, bits)
    before = acc.copy()
    prg.add_into(acc, key)
    mask = reference_mask(key, dim, bits)
    expected = [(a + m) % 2**bits for a, m in zip(before.tolist(), mask, strict=True)]
    assert acc.tolist() == expected
    prg.add_into(acc, key, subtract=True)
    assert np.array_equal(acc, before)


@settings(max_examples=30, deadline=None)
@given(key=keys16, bits=st.sampled_from(BITS), dim=dims, chunk=chunks)
def test_accumulator_with_high_garbage_is_reduced(
    key: bytes, bits: int, dim: int, chunk: int
) -> None:
    """Words above 2^b in the accumulator come out reduced mod 2^b."""
    dtype = word_dtype(bits)
    acc = np.full(dim, np.iinfo(dtype).max, dtype=dtype)
    prg = MaskPRG(bits, chunk_bytes=chunk)
    prg.add_into(acc, key)
    prg.add_into(acc, key, subtract=True)
    assert acc.tolist() == [ring_mask(bits)] * dim


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.tuples(keys16, st.booleans()), max_size=8),
    bits=st.sampled_from(BITS),
    dim=dims,
    chunk=chunks,
    seed=st.integers(0, 2**32 - 1),
)
def test_add_many_equals_sequential_add_into(
    keys: list[tuple[bytes, bool]], bits: int, dim: int, chunk: int, seed: int
) -> None:
    prg = MaskPRG(bits, chunk_bytes=chunk)
    acc = random_acc(np.random.default_rng(seed), dim, bits)
    sequential = acc.copy()
    for key, subtract in keys:
        prg.add_into(sequential, key, subtract=subtract)
    prg.add_many(acc, keys)
    assert np.array_equal(acc, sequential)
    # The module-level helper agrees too.
    helper = random_acc(np.random.default_rng(seed), dim, bits)
    add_masks(helper, bits, [k for k, s in keys if not s], [k for k, s in keys if s])
    assert np.array_equal(helper, sequential)


@settings(max_examples=30, deadline=None)
@given(key=keys16, bits=st.sampled_from(BITS), dim=dims, chunk=chunks)
def test_fill_is_raw_keystream_masked(key: bytes, bits: int, dim: int, chunk: int) -> None:
    dtype = word_dtype(bits)
    stream = reference_keystream(key, dim * dtype.itemsize)
    raw = np.frombuffer(stream, dtype=dtype.newbyteorder("<"))
    out = np.full(dim, 12345, dtype=dtype)
    MaskPRG(bits, chunk_bytes=chunk).fill(key, out)
    assert np.array_equal(out, raw & dtype.type(ring_mask(bits)))


def test_instance_is_reusable_across_keys_and_sizes() -> None:
    prg = MaskPRG(32, chunk_bytes=64)
    for key, dim in [(KEY, 50), (bytes(16), 3), (KEY, 17)]:
        out = np.empty(dim, dtype=np.uint32)
        prg.fill(key, out)
        assert out.tolist() == reference_mask(key, dim, 32)


# ---- misuse --------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [0, 65, -1, True, 1.5, "32", None])
def test_bad_bit_width(bits: object) -> None:
    with pytest.raises(ConfigError):
        MaskPRG(bits)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        check_bits(bits)  # type: ignore[arg-type]


def test_bit_helpers() -> None:
    assert check_bits(np.int64(17)) == 17
    assert ring_mask(1) == 1
    assert ring_mask(64) == 2**64 - 1
    assert word_dtype(32) == np.uint32
    assert word_dtype(33) == np.uint64


def _bad_buffers(bits: int) -> list[np.ndarray]:
    dtype = word_dtype(bits)
    wrong = np.uint64 if dtype == np.uint32 else np.uint32
    readonly = np.zeros(8, dtype=dtype)
    readonly.setflags(write=False)
    return [
        np.zeros(8, dtype=wrong),
        np.zeros(8, dtype=np.int32 if dtype == np.uint32 else np.int64),
        np.zeros(8, dtype=np.float64),
        np.zeros(8, dtype=dtype.newbyteorder(">")),
        np.zeros((2, 4), dtype=dtype),
        np.zeros(16, dtype=dtype)[::2],
        readonly,
    ]


@pytest.mark.parametrize("bits", [16, 32, 33, 64])
@pytest.mark.parametrize("case", range(7))
def test_bad_buffers_are_refused_and_untouched(bits: int, case: int) -> None:
    buf = _bad_buffers(bits)[case]
    before = buf.copy()
    prg = MaskPRG(bits)
    for call in (
        lambda: prg.fill(KEY, buf),
        lambda: prg.add_into(buf, KEY),
        lambda: prg.add_many(buf, [(KEY, True)]),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        assert KEY.hex() not in str(info.value)
        assert np.array_equal(buf, before)


@pytest.mark.parametrize(
    "key",
    [b"", bytes(15), bytes(17), bytes(32), bytearray(16), "k" * 16, None],
    ids=["empty", "15", "17", "32", "bytearray", "str", "None"],
)
def test_bad_keys_are_refused(key: object) -> None:
    prg = MaskPRG(32)
    out = np.zeros(8, dtype=np.uint32)
    for call in (
        lambda: prg.fill(key, out),  # type: ignore[arg-type]
        lambda: prg.add_into(out, key),  # type: ignore[arg-type]
        lambda: expand_mask(key, 8, 32),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidKeyError):
            call()
    assert not out.any()


def test_a_bad_key_later_in_add_many_leaves_the_accumulator_untouched() -> None:
    secret = bytes(range(0xB0, 0xB0 + PRG_KEY_BYTES))
    acc = np.arange(100, dtype=np.uint32)
    with pytest.raises(InvalidKeyError) as info:
        MaskPRG(32, chunk_bytes=16).add_many(acc, [(secret, False), (secret + b"!", True)])
    assert np.array_equal(acc, np.arange(100, dtype=np.uint32))
    assert secret.hex() not in str(info.value)


def test_negative_dimension() -> None:
    with pytest.raises(ConfigError):
        expand_mask(KEY, -1, 32)


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_add_many_on_a_slice_equals_that_slice_of_the_whole(bits: int) -> None:
    dim = 1000
    key = bytes(range(16))
    whole = np.zeros(dim, dtype=word_dtype(bits))
    MaskPRG(bits, chunk_bytes=64).add_many(whole, [(key, False)])
    start = 256 // word_dtype(bits).itemsize  # a 16-byte block boundary, past a chunk
    part = np.zeros(dim - start, dtype=word_dtype(bits))
    MaskPRG(bits, chunk_bytes=64).add_many(part, [(key, False)], start_word=start)
    np.testing.assert_array_equal(part, whole[start:])


def test_add_many_refuses_an_unaligned_slice() -> None:
    with pytest.raises(ConfigError, match="boundary"):
        MaskPRG(32).add_many(np.zeros(4, dtype=np.uint32), [(bytes(16), False)], start_word=1)
