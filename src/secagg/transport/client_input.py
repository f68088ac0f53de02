"""What a client's input must be, checked before and after the round's spec is known."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.encoding import Encoder
from secagg.encoding.round_spec import RoundSpec
from secagg.errors import ConfigError
from secagg.reasons import AbortReason, DropReason

__all__ = ["as_input", "local_input_problem", "spec_difference"]


def as_input(
    produced: Any, encoder: Encoder | None, bits: int | None
) -> tuple[npt.NDArray[Any], int | None]:
    """The ring vector (and its bit width) from what a task function returned."""
    if encoder is None:
        if isinstance(produced, tuple):
            raise ConfigError("a weight needs an encoder (integer vectors carry no weight)")
        data = np.asarray(produced)
        if data.ndim != 1 or data.shape[0] < 1:
            raise ConfigError(f"the vector must be 1-D and non-empty, got shape {data.shape}")
        return data, bits
    weight = None
    if isinstance(produced, tuple) and len(produced) == 2:
        produced, weight = produced
    return np.asarray(encoder.encode(produced, weight=weight)), encoder.bits


def local_input_problem(
    data: npt.NDArray[Any], bits: int | None, dim: int | None
) -> tuple[str, str] | None:
    """(reason, detail) when ``data`` cannot be a round input, checked without a server.

    Negative or non-integer values never fit; values of 2^bits or more do not fit ``bits``;
    another length than ``dim`` does not fit ``dim``.
    """
    if data.dtype.kind not in "iu":
        return AbortReason.INVALID_INPUT.value, f"the vector must hold integers, not {data.dtype}"
    if dim is not None and data.shape[0] != dim:
        return DropReason.WRONG_LENGTH.value, f"the vector has {data.shape[0]} values, not D={dim}"
    if data.dtype.kind == "i" and data.size and int(data.min()) < 0:
        position = int(np.argmin(data))
        return (
            AbortReason.INVALID_INPUT.value,
            f"value {int(data[position])} at position {position} is negative",
        )
    if bits is not None and bits < 64 and data.size and int(data.max()) >= 1 << bits:
        position = int(np.argmax(data))
        return (
            AbortReason.INVALID_INPUT.value,
            f"value {int(data[position])} at position {position} is not below 2^{bits}",
        )
    return None


def spec_difference(announced: bytes, expected: bytes) -> str:
    """Why this client's vector does not fit the announced spec (specs hold no secrets)."""
    if not announced:
        return "the round announces raw integers (no spec); this client's vector has a spec"
    if not expected:
        return "the round announces a spec; this client sends raw integers (spec=b'')"
    try:
        theirs = RoundSpec.decode(announced)
    except ConfigError as exc:
        return f"the round's announced spec is malformed: {exc}"
    mine = RoundSpec.decode(expected)
    return "the round's spec differs from this client's (round vs client): " + "; ".join(
        theirs.diff(mine)
    )
