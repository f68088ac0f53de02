"""Checks of what a caller hands :func:`~secagg.simulation.engine.simulate`."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.ring import check_bits, word_dtype
from secagg.errors import ConfigError

__all__ = ["as_matrix", "check_bits_arg", "check_weight"]


def as_matrix(inputs: npt.ArrayLike, bits: int) -> npt.NDArray[np.unsignedinteger]:
    """``inputs`` as an n x D array of ring words; ConfigError naming what is wrong."""
    bits = check_bits(bits)  # a plain int from here: np.int64(63) must not overflow 1 << bits
    try:
        arr = np.asarray(inputs)
    except ValueError:
        raise ConfigError(_ragged_detail(inputs)) from None
    if arr.ndim != 2:
        raise ConfigError(f"inputs must be n vectors of equal length (2-D), got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ConfigError(
            f"inputs must be integers below 2^bits (got dtype {arr.dtype}); encode floats first"
        )
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 1 << bits):
        raise ConfigError(f"input values must lie in 0..2^{bits}-1")
    return arr.astype(word_dtype(bits), copy=False)


def _ragged_detail(inputs: Any) -> str:
    """Name the first client whose vector length differs from client 0's."""
    rows = list(inputs)
    first = len(rows[0]) if rows and hasattr(rows[0], "__len__") else None
    for i, row in enumerate(rows):
        length = len(row) if hasattr(row, "__len__") else None
        if length != first:
            return (
                f"inputs must be n vectors of equal length: client {i} has "
                f"{'no length' if length is None else length} values, client 0 has {first}"
            )
    return "inputs must be n vectors of equal length (2-D) of integers"


def check_weight(client: int, value: object) -> float:
    """A client's weight as a float; ConfigError for anything but a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"weights[{client}] must be a number, got {type(value).__name__}")
    return float(value)


def check_bits_arg(bits: object) -> int:
    """An explicit ``bits=`` as an int in 1..64."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 1 <= bits <= 64:
        raise ConfigError(f"bits must be an integer in 1..64, got {bits!r}")
    return int(bits)
