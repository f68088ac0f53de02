"""Assigning clients to shards uniformly at random, never in groups anyone picks.

Each shard has a capacity (its round's ``--clients``); the shards' slots form one pool and
each new client takes a slot drawn uniformly from the free ones with the system CSPRNG. Every
client's shard is then uniform over the shards (weighted by capacity), and the partition is a
uniformly random one with the given sizes whatever order the clients arrive in: neither the
operator nor a client chooses who shares a shard with whom. A name asking again gets the same
shard, so a client cannot shop for one.
"""

from __future__ import annotations

from collections.abc import Sequence

from secagg.crypto.entropy import RandomSource, default_random
from secagg.errors import ConfigError

__all__ = ["MAX_NAME_BYTES", "ShardAssigner", "ShardsFullError", "balanced_capacities"]

MAX_NAME_BYTES = 256
"""Longest client name the coordinator accepts (names are remembered per round)."""


class ShardsFullError(ConfigError):
    """Every shard's capacity is taken: this client cannot join the round."""


def balanced_capacities(clients: int, shards: int) -> list[int]:
    """``clients`` split over ``shards`` as evenly as possible (sizes differ by at most one)."""
    if shards < 1 or clients < 2 * shards:
        raise ConfigError(
            f"{clients} clients cannot fill {shards} shards of at least 2 clients each"
        )
    base, extra = divmod(clients, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


class ShardAssigner:
    """Hands out shard slots uniformly at random from a CSPRNG."""

    def __init__(self, capacities: Sequence[int], rng: RandomSource | None = None) -> None:
        if not capacities or any(c < 1 for c in capacities):
            raise ConfigError(f"shard capacities must be positive, got {list(capacities)}")
        self._free = list(capacities)
        self._rng = rng or default_random()
        self._assigned: dict[str, int] = {}

    @property
    def assigned(self) -> dict[str, int]:
        """Client name -> shard index, for every client assigned so far."""
        return dict(self._assigned)

    @property
    def free(self) -> list[int]:
        """Free slots per shard."""
        return list(self._free)

    def assign(self, name: str) -> int:
        """The shard of client ``name`` (the same one if it asked before)."""
        if not name or len(name.encode()) > MAX_NAME_BYTES:
            raise ConfigError(f"a client name must be 1..{MAX_NAME_BYTES} bytes")
        if name in self._assigned:
            return self._assigned[name]
        total = sum(self._free)
        if total == 0:
            raise ShardsFullError(f"all {len(self._free)} shards are full")
        slot = _below(self._rng, total)
        shard = 0
        while slot >= self._free[shard]:
            slot -= self._free[shard]
            shard += 1
        self._free[shard] -= 1
        self._assigned[name] = shard
        return shard


def _below(rng: RandomSource, bound: int) -> int:
    """Uniform integer in [0, bound) by rejection sampling (no modulo bias)."""
    limit = (1 << 64) - (1 << 64) % bound
    while True:
        x = int.from_bytes(rng.random_bytes(8), "little")
        if x < limit:
            return x % bound
