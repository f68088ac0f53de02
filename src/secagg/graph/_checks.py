"""Argument checks shared by the graph modules; every failure is a ConfigError."""

from __future__ import annotations

import operator
from typing import SupportsIndex

from secagg.errors import ConfigError

__all__ = ["check_degree", "check_int", "check_n"]


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """Return ``value`` as an int (bools refused), optionally at least ``minimum``."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        out = int(value)
    elif isinstance(value, SupportsIndex):  # NumPy integers; the protocol check is slow
        out = operator.index(value)
    else:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and out < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {out}")
    return out


def check_n(n: object) -> int:
    """Validate the number of clients n (n >= 2)."""
    count = check_int("number of clients n", n)
    if count < 2:
        raise ConfigError(
            f"number of clients n must be >= 2 (a neighbour graph needs at least one edge), "
            f"got {count}"
        )
    return count


def check_degree(n: int, degree: object) -> int:
    """Validate the neighbour degree k for n clients: k = n - 1, or k even with 2 <= k < n - 1."""
    k = check_int("degree k", degree)
    if k == n - 1:
        return k
    if k % 2 == 0 and 2 <= k < n - 1:
        return k
    allowed = f"n - 1 = {n - 1} (the complete graph)"
    if n - 2 >= 2:
        upper = n - 2 if n % 2 == 0 else n - 3
        allowed += f" or an even number in 2..{upper}"
    raise ConfigError(f"degree k must be {allowed} for n = {n} clients, got {k}")
