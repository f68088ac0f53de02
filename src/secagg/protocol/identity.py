"""Who the clients are: the registry of long-term identity keys (malicious mode)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["IdentityRegistry", "MappingRegistry"]


class IdentityRegistry(Protocol):
    """Maps a client index to its Ed25519 identity public key (32 bytes)."""

    def identity_key(self, index: int) -> bytes | None:
        """The identity public key of ``index``, or None if it is not registered."""
        ...


class MappingRegistry:
    """An :class:`IdentityRegistry` over a plain ``{index: public_key}`` mapping."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        self._keys = dict(keys)

    def identity_key(self, index: int) -> bytes | None:
        return self._keys.get(index)

    def __len__(self) -> int:
        return len(self._keys)
