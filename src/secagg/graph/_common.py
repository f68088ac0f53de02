"""Threshold rules and search helpers shared by the parameter models."""

from __future__ import annotations

import math

from secagg.graph._checks import check_int
from secagg.graph.mode import Mode, check_mode

__all__ = ["LN2", "log2_union", "min_threshold", "next_degree", "threshold_bounds"]

LN2 = math.log(2.0)


def threshold_bounds(degree: int, mode: Mode) -> tuple[int, int]:
    """``(min_t, max_t)`` allowed by PROTOCOL.md for neighbour degree k.

    t <= k + 1 always (a client shares with itself and its k neighbours); semi-honest needs
    t > (k + 1) / 2, malicious t > 2(k + 1) / 3.
    """
    k = check_int("degree k", degree, 1)
    holders = k + 1
    if check_mode(mode) == "semi-honest":
        return holders // 2 + 1, holders
    return (2 * holders) // 3 + 1, holders


def min_threshold(k: int, mode: Mode, corrupt_bar: int) -> int:
    """Smallest t that obeys the mode's rule and keeps the corrupt count that breaks privacy
    (t, or 2t - (k + 1) in malicious mode) at or above ``corrupt_bar``."""
    rule_min, _ = threshold_bounds(k, mode)
    if mode == "semi-honest":
        return max(rule_min, corrupt_bar)
    return max(rule_min, -(-(corrupt_bar + k + 1) // 2))


def next_degree(
    k: int, corrupt_bar: int, t_correct: int, mode: Mode, k_max: int, *, max_t_offset: int = 0
) -> int:
    """The next even degree that could work, given what degree ``k`` allows.

    Two couplings make this exact: drawing more neighbours never lowers the corrupt count,
    so the corrupt bar never falls as k grows; and it raises the surviving count by at most
    the number of extra draws, so the largest correct t grows by at most k' - k. Hence k' is
    hopeless while max(rule(k'), bar-derived t) > min(k' + max_t_offset, t_correct(k) + k' - k),
    a gap that shrinks as k' grows; bisect for where it closes.
    """

    def hopeless(k2: int) -> bool:
        lower = min_threshold(k2, mode, corrupt_bar)
        return lower > min(k2 + max_t_offset, t_correct + (k2 - k))

    step = 1
    while k + 2 * step <= k_max and hopeless(k + 2 * step):
        step *= 2
    lo, hi = step // 2 + 1, step  # hopeless at 2 * (lo - 1); maybe not at 2 * hi
    while lo < hi:
        mid = (lo + hi) // 2
        if hopeless(k + 2 * mid):
            lo = mid + 1
        else:
            hi = mid
    return k + 2 * lo


def log2_union(n: int, log_each: float, log_extra: float = -math.inf) -> float:
    """log2 of min(1, e^log_extra + n e^log_each): a union bound over n clients plus one term."""
    terms = [x for x in (log_extra, math.log(n) + log_each) if x > -math.inf]
    if not terms:
        return -math.inf
    top = max(terms)
    total = top + math.log(sum(math.exp(x - top) for x in terms))
    return min(0.0, total) / LN2
