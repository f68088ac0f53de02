"""The smallest Harary degree whose survivors' ring stays connected, for either model."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["first_connected_degree"]


def first_connected_degree(n: int, log_disconnect: Callable[[int], float], log_q: float) -> int:
    """Smallest even k in 2..n - 2 with ``log_disconnect(k) < log_q`` (n - 1 if none).

    The bound falls as k grows (fewer, longer runs of bad clients cut the ring), so bisect.
    """
    lo, hi = 1, (n - 2) // 2  # k = 2j, j in lo..hi
    if hi < lo or log_disconnect(2 * hi) >= log_q:
        return n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if log_disconnect(2 * mid) < log_q:
            hi = mid
        else:
            lo = mid + 1
    return 2 * lo
