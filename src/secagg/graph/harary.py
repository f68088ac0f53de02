"""The neighbour graph: a Harary graph H(k, n) on a pseudorandom permutation of the clients.

Position p on the ring is joined to positions p +- 1 .. p +- k/2 (mod n); k = n - 1 is the
complete graph. The permutation is a Fisher-Yates shuffle driven by AES-128-CTR keyed from the
graph seed, so every party recomputes the same graph from (seed, indices, k).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.errors import ConfigError
from secagg.graph._checks import check_degree, check_n

__all__ = ["NeighbourGraph"]

_BLOCK = 8 * 1024


class _Stream:
    """Uniform integers below a bound from an AES-128-CTR keystream (rejection sampling)."""

    def __init__(self, seed: bytes) -> None:
        key = hashlib.sha256(b"secagg/v1/graph" + seed).digest()[:16]
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self._buf = memoryview(b"")
        self._zeros = bytes(_BLOCK)

    def _word(self) -> int:
        if len(self._buf) < 8:
            self._buf = memoryview(self._enc.update(self._zeros))
        word = int.from_bytes(self._buf[:8], "little")
        self._buf = self._buf[8:]
        return word

    def below(self, bound: int) -> int:
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            x = self._word()
            if x < limit:
                return x % bound


class NeighbourGraph:
    """Who neighbours whom in one round. A pure function of (seed, indices, degree)."""

    def __init__(self, seed: bytes, indices: Iterable[int], degree: int) -> None:
        if not isinstance(seed, bytes) or not seed:
            raise ConfigError("graph seed must be non-empty bytes")
        members = sorted(indices)
        if len(set(members)) != len(members):
            raise ConfigError("client indices must be distinct")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in members):
            raise ConfigError("client indices must be positive integers")
        n = check_n(len(members))
        self.degree = check_degree(n, degree)
        self.indices: tuple[int, ...] = tuple(members)
        self.is_complete = self.degree == n - 1
        order = list(members)
        stream = _Stream(seed)
        for i in range(n - 1, 0, -1):
            j = stream.below(i + 1)
            order[i], order[j] = order[j], order[i]
        self._order = order
        self._position = {v: p for p, v in enumerate(order)}

    def neighbours(self, index: int) -> tuple[int, ...]:
        """The sorted neighbours of ``index`` (never itself)."""
        p = self._position.get(index)
        if p is None:
            raise ConfigError(f"client {index} is not in the graph")
        n = len(self._order)
        if self.is_complete:
            return tuple(v for v in self.indices if v != index)
        half = self.degree // 2
        return tuple(sorted(self._order[(p + d) % n] for d in range(-half, half + 1) if d))

    def are_neighbours(self, a: int, b: int) -> bool:
        """True when a and b are joined (symmetric)."""
        pa, pb = self._position.get(a), self._position.get(b)
        if pa is None or pb is None or a == b:
            return False
        if self.is_complete:
            return True
        n = len(self._order)
        gap = (pa - pb) % n
        return min(gap, n - gap) <= self.degree // 2
