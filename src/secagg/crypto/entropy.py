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

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

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
        if isinstance(seed, int):
            seed = seed.to_bytes(16, "big", signed=True)
        elif isinstance(seed, str):
            seed = seed.encode()
        key = hashlib.sha256(b"secagg/v1/deterministic-random" + seed).digest()
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def random_bytes(self, n: int) -> bytes:
        return self._enc.update(bytes(n))

    def fork(self, label: str) -> DeterministicRandom:
        """An independent stream derived from this one and ``label``."""
        return DeterministicRandom(self.random_bytes(32) + label.encode())


_SYSTEM = SystemRandom()


def default_random() -> RandomSource:
    """The process-wide system randomness source."""
    return _SYSTEM
