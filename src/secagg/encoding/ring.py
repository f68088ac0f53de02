"""Ring words: signed integers to residues mod 2^b and back.

The aggregation ring is Z / 2^b Z stored as uint32 (b <= 32) or uint64 (b > 32), as fixed by
PROTOCOL.md. Encoders produce signed int64 values (DP noise can be negative); the ring only sees
their residues. Decoding recovers the integer sum from its residue when the caller knows a
window of width 2^b that contains it, which is what the bit-width rule guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from secagg.crypto.prg import check_bits, ring_mask, word_dtype
from secagg.errors import EncodingError

__all__ = [
    "RingArray",
    "as_ring_total",
    "decode_window",
    "narrow",
    "ring_sum",
    "to_ring",
    "word_dtype",
]

RingArray = npt.NDArray[np.uint32] | npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]


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


def ring_sum(vectors: Iterable[npt.ArrayLike], bits: int) -> RingArray:
    """Plain (insecure) sum mod 2^b of ring vectors: the reference a secure round must match."""
    acc: npt.NDArray[np.uint64] | None = None
    for vector in vectors:
        v = np.asarray(vector).astype(np.uint64)
        if acc is None:
            acc = v.copy()
        elif v.shape != acc.shape:
            raise EncodingError(f"ring vectors differ in shape: {acc.shape} and {v.shape}")
        else:
            acc += v  # uint64 wraps mod 2^64, a multiple of 2^b
    if acc is None:
        raise EncodingError("ring_sum needs at least one vector")
    acc &= np.uint64(ring_mask(bits))
    return narrow(acc, bits)
