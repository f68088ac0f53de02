"""Choosing the ring bit width b so that the sum of n clients cannot wrap.

Each value coordinate of a client is an integer in [0, 2^q] plus, with DP, noise whose
aggregate over the clients stays within [-a, a] (``noise_headroom``, a tail bound). The decoder
reads the sum in the window [-a, 2^b - a), so it is exact when

    2^b > n * 2^q + 2a                         (PROTOCOL.md: 2^b > n * 2^q without noise)

Extra coordinates are built to fit that same b: the weight is quantized to [0, 2^q] like the
values, the clipped-count is split into limbs of :func:`limb_bits` bits, and the clipped flag is
0 or 1.
"""

from __future__ import annotations

import numpy as np

from secagg.crypto.ring import check_bits
from secagg.encoding.quantize import check_quant_bits
from secagg.errors import ConfigError, EncodingError

__all__ = ["MAX_BITS", "check_n_clients", "choose_bits", "limb_bits", "required_bits"]

MAX_BITS = 64


def check_n_clients(n_clients: int) -> int:
    """Validate a client count (>= 1) and return it."""
    if isinstance(n_clients, bool) or not isinstance(n_clients, int | np.integer):
        raise ConfigError(f"n_clients must be an integer, got {type(n_clients).__name__}")
    if n_clients < 1:
        raise ConfigError(f"n_clients must be >= 1, got {n_clients}")
    return int(n_clients)


def _largest_sum(n_clients: int, quant_bits: int, noise_headroom: int) -> int:
    if isinstance(noise_headroom, bool) or not isinstance(noise_headroom, int | np.integer):
        raise ConfigError("noise_headroom must be an integer")
    if noise_headroom < 0:
        raise ConfigError(f"noise_headroom must be >= 0, got {noise_headroom}")
    n = check_n_clients(n_clients)
    q = check_quant_bits(quant_bits)
    return n * (1 << q) + 2 * int(noise_headroom)


def required_bits(n_clients: int, quant_bits: int, noise_headroom: int = 0) -> int:
    """Smallest b with 2^b > n * 2^q + 2 * noise_headroom (may exceed 64: see choose_bits)."""
    return max(1, _largest_sum(n_clients, quant_bits, noise_headroom).bit_length())


def _describe(n: int, q: int, headroom: int) -> str:
    largest = _largest_sum(n, q, headroom)
    noise = f" + 2*{headroom} (DP noise headroom)" if headroom else ""
    return f"the sum of n={n} clients with quant_bits={q} spans {n}*2^{q}{noise} = {largest}"


def choose_bits(
    n_clients: int, quant_bits: int, *, noise_headroom: int = 0, bits: int | None = None
) -> int:
    """The bit width to use: the smallest safe one, or ``bits`` after checking it cannot wrap.

    Raises :class:`EncodingError` (stating n, q, the bits needed and given) when ``bits`` is
    too small or when no b <= 64 is safe; :class:`ConfigError` when ``bits`` is not in 1..64.
    """
    need = required_bits(n_clients, quant_bits, noise_headroom)
    if need > MAX_BITS:
        raise EncodingError(
            f"{_describe(n_clients, quant_bits, noise_headroom)}, which needs {need} bits, "
            f"more than the maximum {MAX_BITS}; lower quant_bits, the number of clients or the "
            "DP noise"
        )
    if bits is None:
        return need
    given = check_bits(bits)
    if given < need:
        raise EncodingError(
            f"bits={given} could wrap: {_describe(n_clients, quant_bits, noise_headroom)}, "
            f"which needs {need} bits (2^b > {_largest_sum(n_clients, quant_bits, noise_headroom)}"
            f"), got {given}"
        )
    return given


def limb_bits(bits: int, n_clients: int) -> int:
    """Largest L with n * (2^L - 1) < 2^b: limbs of L bits summed over n clients cannot wrap."""
    per_client = ((1 << check_bits(bits)) - 1) // check_n_clients(n_clients)
    if per_client < 1:
        raise EncodingError(f"bits={bits} cannot hold even a 0/1 flag summed over n={n_clients}")
    return min(check_bits(bits), (per_client + 1).bit_length() - 1)
