"""The neighbour graph: a Harary graph H(k, n) on a pseudorandom permutation of the clients.

Everyone recomputes the same graph from (seed, indices, k), so the derivation is fixed here:

1. ``order`` starts as the registered indices sorted ascending.
2. key = SHA-256(b"secagg/v1/graph" || seed)[:16]; the AES-128-CTR keystream under that key
   with an all-zero initial counter block is read as consecutive little-endian 64-bit words.
3. Fisher-Yates: for i = n - 1 down to 1, draw j uniform in 0..i by rejection (take the next
   word w, discard it while w >= 2^64 - (2^64 mod (i + 1)), then j = w mod (i + 1)) and swap
   order[i] and order[j].
4. The client at position p is joined to the clients at positions p +- 1 .. p +- k/2 (mod n);
   k = n - 1 is the complete graph.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.errors import ConfigError
from secagg.graph._checks import check_degree, check_int, check_n

__all__ = ["NeighbourGraph"]

_LABEL = b"secagg/v1/graph"
_WORD_SPACE = 1 << 64
_BLOCK_WORDS = 1024


class _UniformStream:
    """Unbiased integers below a bound, from the AES-128-CTR keystream of step 2."""

    def __init__(self, seed: bytes) -> None:
        key = hashlib.sha256(_LABEL + seed).digest()[:16]
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self._zeros = bytes(8 * _BLOCK_WORDS)
        self._unpack = struct.Struct(f"<{_BLOCK_WORDS}Q").unpack
        self._words: tuple[int, ...] = ()
        self._next = 0

    def below(self, bound: int) -> int:
        # Words at or above the largest multiple of bound would favour small results.
        limit = _WORD_SPACE - _WORD_SPACE % bound
        while True:
            if self._next == len(self._words):
                self._words = self._unpack(self._enc.update(self._zeros))
                self._next = 0
            word = self._words[self._next]
            self._next += 1
            if word < limit:
                return word % bound


def _check_indices(indices: Iterable[int]) -> tuple[int, ...]:
    members = sorted(check_int("client index", i, 1) for i in indices)
    for a, b in itertools.pairwise(members):
        if a == b:
            raise ConfigError(f"client indices must be distinct, but {a} appears more than once")
    return tuple(members)


class NeighbourGraph:
    """Who neighbours whom in one round: a pure function of (seed, indices, degree).

    ``indices`` are the registered client indices (distinct positive integers, any order);
    ``degree`` is n - 1 (complete graph) or an even k with 2 <= k < n - 1.
    """

    __slots__ = ("_degree", "_half", "_indices", "_order", "_position")

    def __init__(self, seed: bytes, indices: Iterable[int], degree: int) -> None:
        if not isinstance(seed, bytes) or not seed:
            got = f"{len(seed)} bytes" if isinstance(seed, bytes) else type(seed).__name__
            raise ConfigError(f"graph seed must be non-empty bytes, got {got}")
        members = _check_indices(indices)
        n = check_n(len(members))
        self._degree = check_degree(n, degree)
        self._half = self._degree // 2
        self._indices = members
        order = list(members)
        stream = _UniformStream(seed)
        for i in range(n - 1, 0, -1):
            j = stream.below(i + 1)
            order[i], order[j] = order[j], order[i]
        self._order: tuple[int, ...] = tuple(order)
        self._position = {v: p for p, v in enumerate(order)}

    @property
    def indices(self) -> tuple[int, ...]:
        """The registered client indices, sorted."""
        return self._indices

    @property
    def degree(self) -> int:
        """k: how many neighbours every client has."""
        return self._degree

    @property
    def n(self) -> int:
        """The number of clients."""
        return len(self._indices)

    @property
    def is_complete(self) -> bool:
        """True when everyone neighbours everyone (k = n - 1, classic SecAgg)."""
        return self._degree == len(self._indices) - 1

    def _position_of(self, index: int) -> int:
        p = self._position.get(index)
        if p is None:
            raise ConfigError(f"client {index!r} is not registered in this graph")
        return p

    def neighbours(self, index: int) -> tuple[int, ...]:
        """The neighbours of ``index``, sorted, never ``index`` itself."""
        p = self._position_of(index)
        if self.is_complete:
            return tuple(v for v in self._indices if v != index)
        order, h = self._order, self._half
        n = len(order)
        if h <= p < n - h:  # no wrap-around: two slices of the ring
            return tuple(sorted(order[p - h : p] + order[p + 1 : p + h + 1]))
        return tuple(sorted(order[(p + d) % n] for d in range(-h, h + 1) if d))

    def are_neighbours(self, a: int, b: int) -> bool:
        """True when a and b are joined (symmetric); False for unregistered indices."""
        pa, pb = self._position.get(a), self._position.get(b)
        if pa is None or pb is None or a == b:
            return False
        if self.is_complete:
            return True
        gap = (pa - pb) % len(self._order)
        return min(gap, len(self._order) - gap) <= self._half

    def __repr__(self) -> str:
        return f"NeighbourGraph(n={self.n}, degree={self._degree})"
