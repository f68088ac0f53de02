"""The mask PRG: AES-128-CTR keystream read as ring words.

PROTOCOL.md fixes it: a 16-byte key, IV zero, output read as little-endian 32-bit words for
b <= 32 and 64-bit words for b > 32, each reduced to b bits. Because reduction mod 2^b commutes
with addition mod 2^32 (or 2^64), words are added at full width and the accumulator is reduced
once per chunk; the result equals adding the reduced words.

Keystream is produced with ``update_into`` into a reused buffer, one chunk (~256 KiB) at a time,
and added into the caller's accumulator in place: no D-sized temporary is ever allocated.
:func:`add_masks` walks the accumulator once for many keys so each accumulator chunk stays in
cache while every key's keystream is added to it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from secagg.crypto.ring import RingArray, check_bits, ring_mask, word_dtype
from secagg.errors import ConfigError, InvalidKeyError

__all__ = [
    "CHUNK_BYTES",
    "PRG_KEY_BYTES",
    "MaskPRG",
    "add_masks",
    "expand_mask",
]

PRG_KEY_BYTES = 16
CHUNK_BYTES = 256 * 1024
_IV = bytes(16)
_BLOCK_BYTES = 16


def _encryptor(key: bytes, block: int = 0) -> CipherContext:
    """AES-128-CTR positioned at 16-byte keystream block ``block`` (block 0: IV zero)."""
    if not isinstance(key, bytes) or len(key) != PRG_KEY_BYTES:
        raise InvalidKeyError(f"PRG key must be {PRG_KEY_BYTES} bytes")
    iv = _IV if block == 0 else block.to_bytes(_BLOCK_BYTES, "big")
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("secagg's PRG assumes a little-endian machine")


class MaskPRG:
    """Expands 16-byte keys into masks of ring words, with reusable chunk buffers.

    One instance per thread; it owns scratch buffers so repeated calls allocate nothing.
    """

    def __init__(self, bits: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.bits = check_bits(bits)
        self.dtype = word_dtype(bits)
        self._itemsize = self.dtype.itemsize
        self._chunk_words = max(1, chunk_bytes // self._itemsize)
        nbytes = self._chunk_words * self._itemsize
        self._zeros = bytes(nbytes)
        self._raw = np.empty(nbytes, dtype=np.uint8)
        self._words: RingArray = self._raw.view(self.dtype)
        full_width = self.bits in (32, 64)
        self._mask = None if full_width else self.dtype.type(ring_mask(self.bits))

    def _check_out(self, arr: np.ndarray) -> None:
        if arr.dtype != self.dtype or arr.ndim != 1 or not arr.flags.c_contiguous:
            raise ConfigError(
                f"buffer must be a contiguous 1-D {self.dtype} array for b={self.bits}, "
                f"got {arr.ndim}-D {arr.dtype}"
            )
        if not arr.flags.writeable:
            raise ConfigError("buffer must be writeable")

    def fill(self, key: bytes, out: RingArray) -> None:
        """Write the mask for ``key`` into ``out`` (its length is the dimension D)."""
        self._check_out(out)
        enc = _encryptor(key)
        raw = out.view(np.uint8)
        step = len(self._zeros)
        for start in range(0, raw.size, step):
            piece = raw[start : start + step]
            enc.update_into(memoryview(self._zeros)[: piece.size], piece.data)
        if self._mask is not None:
            np.bitwise_and(out, self._mask, out=out)

    def add_into(self, acc: RingArray, key: bytes, *, subtract: bool = False) -> None:
        """``acc = acc ± mask(key) mod 2^b`` in place."""
        self.add_many(acc, [(key, subtract)])

    def add_many(
        self, acc: RingArray, keys: Iterable[tuple[bytes, bool]], *, start_word: int = 0
    ) -> None:
        """Add (or, where the flag is True, subtract) several masks into ``acc`` in place.

        Walks ``acc`` once, chunk by chunk, applying every key's keystream to the chunk while
        it is in cache. ``start_word`` says that ``acc`` holds words ``start_word ..`` of the
        full vector (a slice, for splitting the work across processes); it must fall on a
        16-byte keystream block boundary.
        """
        self._check_out(acc)
        offset = start_word * self._itemsize
        if start_word < 0 or offset % _BLOCK_BYTES:
            raise ConfigError(
                f"start_word {start_word} must be >= 0 and on a {_BLOCK_BYTES}-byte boundary"
            )
        block = offset // _BLOCK_BYTES
        streams = [(_encryptor(key, block), subtract) for key, subtract in keys]
        if not streams:
            return
        zeros = memoryview(self._zeros)
        step = self._chunk_words
        for start in range(0, acc.size, step):
            target = acc[start : start + step]
            count = target.size
            ks = self._words[:count]
            raw = self._raw[: count * self._itemsize]
            for enc, subtract in streams:
                enc.update_into(zeros[: raw.size], raw.data)
                if subtract:
                    np.subtract(target, ks, out=target)
                else:
                    np.add(target, ks, out=target)
            if self._mask is not None:
                np.bitwise_and(target, self._mask, out=target)


def expand_mask(key: bytes, dim: int, bits: int) -> RingArray:
    """A new array holding the D-word mask for ``key``."""
    if dim < 0:
        raise ConfigError(f"dimension must be >= 0, got {dim}")
    out: RingArray = np.empty(dim, dtype=word_dtype(bits))
    MaskPRG(bits).fill(key, out)
    return out


def add_masks(
    acc: RingArray, bits: int, add: Sequence[bytes] = (), subtract: Sequence[bytes] = ()
) -> None:
    """``acc += sum(mask(k) for k in add) - sum(mask(k) for k in subtract)`` mod 2^b."""
    MaskPRG(bits).add_many(acc, [(k, False) for k in add] + [(k, True) for k in subtract])
