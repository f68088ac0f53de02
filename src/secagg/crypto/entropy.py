"""Sources of randomness.

Keys, seeds and nonces come from :class:`SystemRandom` (``os.urandom``). Sessions take a
:class:`RandomSource` so tests and simulations can be made reproducible with
:class:`DeterministicRandom`, an AES-256-CTR stream keyed by a seed: still a cryptographic PRG,
but predictable to whoever knows the seed, so never for production keys.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, runtime_checkable

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.errors import ConfigError

__all__ = ["DeterministicRandom", "RandomSource", "SystemRandom", "default_random"]


@runtime_checkable
class RandomSource(Protocol):
    """Anything that returns uniformly random bytes."""

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` uniformly random bytes."""
        ...


class SystemRandom:
    """The operating system's CSPRNG (``os.urandom``)."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)


class DeterministicRandom:
    """A reproducible CSPRNG: AES-256-CTR keyed by SHA-256(seed). For tests and simulation."""

    def __init__(self, seed: bytes | int | str) -> None:
        seed = _seed_bytes(seed)
        key = hashlib.sha256(b"secagg/v1/deterministic-random" + seed).digest()
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def random_bytes(self, n: int) -> bytes:
        return self._enc.update(bytes(n))

    def fork(self, label: str) -> DeterministicRandom:
        """An independent stream derived from this one and ``label``."""
        return DeterministicRandom(self.random_bytes(32) + label.encode())


def _seed_bytes(seed: object) -> bytes:
    """The seed as bytes; ints take 16 signed big-endian bytes (so seeds stay reproducible)."""
    if isinstance(seed, bool) or not isinstance(seed, bytes | int | str | np.integer):
        raise ConfigError(
            f"seed must be an int, bytes or str, got {type(seed).__name__} {seed!r:.40}"
        )
    if isinstance(seed, int | np.integer):
        value = int(seed)
        if not -(2**127) <= value < 2**127:
            raise ConfigError(
                f"seed must be an integer in -2^127..2^127-1, got one of {value.bit_length()} bits"
            )
        return value.to_bytes(16, "big", signed=True)
    return seed.encode() if isinstance(seed, str) else seed


_SYSTEM = SystemRandom()


def default_random() -> RandomSource:
    """The process-wide system randomness source."""
    return _SYSTEM
