"""The aggregation ring Z / 2^b Z: its words, residues, plain sum and window decoding.

The one home of the ring's vocabulary (the mask PRG, the sessions, the encoders, the simulator
and the process pool all use it). The ring is stored as uint32 (b <= 32) or uint64 (b > 32), as
fixed by PROTOCOL.md. Encoders produce signed int64 values (DP noise can be negative); the ring
only sees their residues. Decoding recovers the integer sum from its residue when the caller
knows a window of width 2^b that contains it, which is what the bit-width rule guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import numpy as np
import numpy.typing as npt

from secagg.errors import ConfigError, EncodingError

__all__ = [
    "RingArray",
    "as_ring_total",
    "check_bits",
    "decode_window",
    "narrow",
    "ring_mask",
    "ring_sum",
    "to_ring",
    "word_dtype",
]

RingArray = npt.NDArray[np.uint32] | npt.NDArray[np.uint64]
"""A vector of ring words (uint32 for b <= 32, uint64 above)."""
IntArray = npt.NDArray[np.int64]


def check_bits(bits: int) -> int:
    """Validate a ring bit width b (1 <= b <= 64) and return it as a Python int."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 1 <= bits <= 64:
        raise ConfigError(f"bit width must be an integer in 1..64, got {bits!r}")
    return int(bits)


def word_dtype(bits: int) -> np.dtype[np.uint32] | np.dtype[np.uint64]:
    """The ring's word type: uint32 for b <= 32, uint64 above."""
    return np.dtype(np.uint32) if check_bits(bits) <= 32 else np.dtype(np.uint64)


def ring_mask(bits: int) -> int:
    """2^b - 1."""
    return (1 << check_bits(bits)) - 1


def to_ring(values: IntArray, bits: int) -> RingArray:
    """Residues mod 2^b of signed int64 ``values``, in the ring's word type."""
    mask = np.uint64(ring_mask(bits))
    # Two's complement view + mask is reduction mod 2^b (2^b divides 2^64), negatives included.
    residues = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64) & mask
    return narrow(residues, bits)


def narrow(words: npt.NDArray[np.uint64], bits: int) -> RingArray:
    """uint64 residues (already < 2^b) in the ring's word type for b."""
    if check_bits(bits) <= 32:
        return words.astype(np.uint32)
    return words


def as_ring_total(total: npt.ArrayLike, bits: int, dim: int) -> npt.NDArray[np.uint64]:
    """Validate a ring total (shape ``(dim,)``, integers in [0, 2^b)) and widen it to uint64."""
    arr = np.asarray(total)
    if arr.shape != (dim,):
        raise EncodingError(f"ring total must have shape ({dim},), got {arr.shape}")
    if arr.dtype.kind not in "ui":
        raise EncodingError(f"ring total must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
        raise EncodingError("ring total has negative entries; expected residues in [0, 2^b)")
    wide = arr.astype(np.uint64)
    if wide.size and int(wide.max()) > ring_mask(bits):
        raise EncodingError(f"ring total has entries >= 2^{bits}; not a total of this ring")
    return wide


def decode_window(total: npt.NDArray[np.uint64], bits: int, *, low: int, shift: int) -> IntArray:
    """Recover ``Z - shift`` from ``total = Z mod 2^b``, given ``-low <= Z < 2^b - low``.

    ``low`` is the window's extent below zero (DP noise headroom; 0 without noise) and
    ``shift`` a non-negative integer removed from the result (n times the zero point). The
    caller guarantees ``|Z - shift| < 2^63``, which holds whenever the bit width was validated.
    """
    check_bits(bits)
    if low < 0 or shift < 0 or low + shift >= 1 << 64:
        raise EncodingError(f"decode window out of range: low={low}, shift={shift}")
    mask = np.uint64(ring_mask(bits))
    in_window = (total + np.uint64(low)) & mask  # = Z + low, in [0, 2^b)
    # Subtraction wraps mod 2^64; the true value fits in int64, so the signed view is exact.
    return (in_window - np.uint64(low + shift)).view(np.int64)


def ring_sum(vectors: Iterable[npt.ArrayLike], bits: int, *, dim: int | None = None) -> RingArray:
    """Plain (insecure) sum mod 2^b of integer vectors, in the ring's word type.

    The reference a secure round must match, and the one plain sum of the package. Entries may
    be any integers (negative ones count by their residue). Accumulates in place at the word's
    full width (2^32 or 2^64 is a multiple of 2^b) and reduces once. With no vectors, ``dim``
    gives the length of the zero result; without it an empty input is an error.
    """
    dtype = word_dtype(bits)
    acc: RingArray | None = None if dim is None else np.zeros(dim, dtype=dtype)
    for vector in vectors:
        v = np.asarray(vector)
        if v.dtype.kind not in "iu":
            raise EncodingError(f"ring vectors must hold integers, got dtype {v.dtype}")
        if acc is None:
            acc = cast(RingArray, v.astype(dtype))  # a copy: the caller's is never written
        elif v.shape != acc.shape:
            raise EncodingError(f"ring vectors differ in shape: {acc.shape} and {v.shape}")
        else:
            np.add(acc, v.astype(dtype, copy=False), out=acc)
    if acc is None:
        raise EncodingError("ring_sum needs at least one vector (or dim= for an empty sum)")
    if check_bits(bits) not in (32, 64):
        np.bitwise_and(acc, dtype.type(ring_mask(bits)), out=acc)
    return acc
