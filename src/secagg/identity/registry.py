"""Long-term client identities and the registry file clients load (malicious mode).

In malicious mode every client signs its round keys and its view of U3 with a long-term Ed25519
identity key; clients accept a neighbour only if its signature verifies under the key the
*registry* lists for its index. The registry is distributed to clients out of band (it must not
come from the aggregation server, or the server could list its own Sybil keys).

Registry file (JSON, UTF-8), schema version 1::

    {
      "format": "secagg-identity-registry",
      "version": 1,
      "clients": [
        {"index": 1, "name": "hospital-a", "public_key": "<64 hex digits>"},
        {"name": "hospital-b", "public_key": "<base64 of 32 bytes>"}
      ]
    }

- ``clients`` is a list of entries; each has ``public_key`` (a raw 32-byte Ed25519 public key as
  64 hex digits or standard base64) and at least one of ``index`` (the client's protocol index,
  an integer in 1..2^32-1) and ``name`` (a non-empty string of at most 256 characters).
- Indices, names and public keys are each unique: one key registered twice would let one party
  sign for two clients.
- No other fields are allowed (typos fail loudly). Files are written with hex keys, entries
  sorted by index then name.

Identity key files (the other half of a deployment's identities) are read and written by
:mod:`secagg.identity.keyfile`; their names are re-exported here.

Every failure raises :class:`~secagg.errors.ConfigError` naming the file and the problem; no
message ever contains private key material.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secagg.crypto.signing import PUBLIC_KEY_BYTES
from secagg.errors import ConfigError
from secagg.identity._files import _read_json, _refuse_open_mode, _write_atomic
from secagg.identity.keyfile import (
    IDENTITY_FORMAT,
    PUBLIC_IDENTITY_FORMAT,
    REGISTRY_VERSION,
    _refuse_weak,
    generate_identity,
    load_identity,
    load_public_key,
    parse_public_key,
    public_path_for,
    save_identity,
)

__all__ = [
    "IDENTITY_FORMAT",
    "PUBLIC_IDENTITY_FORMAT",
    "REGISTRY_FORMAT",
    "REGISTRY_VERSION",
    "IdentityRegistryFile",
    "RegistryEntry",
    "generate_identity",
    "load_identity",
    "load_public_key",
    "load_registry",
    "parse_public_key",
    "public_path_for",
    "save_identity",
    "save_registry",
]

REGISTRY_FORMAT = "secagg-identity-registry"
MAX_INDEX = 2**32 - 1
MAX_NAME = 256
_ENTRY_FIELDS = frozenset({"index", "name", "public_key"})
_REGISTRY_FIELDS = frozenset({"format", "version", "clients"})


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One registered client: its index and/or name, and its identity public key."""

    public_key: bytes
    index: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ConfigError(f"public key must be {PUBLIC_KEY_BYTES} raw bytes")
        _refuse_weak(self.public_key, "public key")
        if self.index is None and self.name is None:
            raise ConfigError("a registry entry needs an index or a name")
        if self.index is not None and (
            isinstance(self.index, bool)
            or not isinstance(self.index, int)
            or not 1 <= self.index <= MAX_INDEX
        ):
            raise ConfigError(f"index must be an integer in 1..{MAX_INDEX}, got {self.index!r}")
        if self.name is not None and (
            not isinstance(self.name, str) or not self.name.strip() or len(self.name) > MAX_NAME
        ):
            raise ConfigError(f"name must be a non-empty string of at most {MAX_NAME} characters")

    def label(self) -> str:
        """How messages refer to this entry."""
        parts = []
        if self.index is not None:
            parts.append(f"index {self.index}")
        if self.name is not None:
            parts.append(f"name {self.name!r}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.index is not None:
            out["index"] = self.index
        if self.name is not None:
            out["name"] = self.name
        out["public_key"] = self.public_key.hex()
        return out


class IdentityRegistryFile:
    """A validated set of :class:`RegistryEntry`; an :class:`IdentityRegistry` by index.

    Pass it as ``registry=`` to :class:`~secagg.protocol.client.session.ClientSession` and
    :class:`~secagg.protocol.server.session.ServerSession`.
    """

    def __init__(self, entries: Iterable[RegistryEntry] = ()) -> None:
        self._entries: list[RegistryEntry] = []
        self._by_index: dict[int, RegistryEntry] = {}
        self._by_name: dict[str, RegistryEntry] = {}
        self._keys: dict[bytes, RegistryEntry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: RegistryEntry) -> None:
        """Add one entry; refuses a repeated index, name or public key."""
        if not isinstance(entry, RegistryEntry):
            raise ConfigError("registry entries must be RegistryEntry objects")
        if entry.index is not None and entry.index in self._by_index:
            raise ConfigError(f"index {entry.index} is already registered")
        if entry.name is not None and entry.name in self._by_name:
            raise ConfigError(f"name {entry.name!r} is already registered")
        if entry.public_key in self._keys:
            raise ConfigError(
                f"this public key is already registered ({self._keys[entry.public_key].label()}); "
                "one identity cannot sign for two clients"
            )
        self._entries.append(entry)
        self._keys[entry.public_key] = entry
        if entry.index is not None:
            self._by_index[entry.index] = entry
        if entry.name is not None:
            self._by_name[entry.name] = entry

    # -- IdentityRegistry ---------------------------------------------------------------------

    def identity_key(self, index: int) -> bytes | None:
        """The identity public key registered for ``index``, or None."""
        entry = self._by_index.get(index)
        return None if entry is None else entry.public_key

    # -- lookups ------------------------------------------------------------------------------

    def by_name(self, name: str) -> RegistryEntry | None:
        """The entry registered under ``name``, or None."""
        return self._by_name.get(name)

    def with_indices(self, assignment: Mapping[str, int]) -> IdentityRegistryFile:
        """A copy where named entries get the indices the server assigned (name -> index)."""
        entries = []
        for entry in self._entries:
            index = entry.index
            if entry.name is not None and entry.name in assignment:
                given = assignment[entry.name]
                if index is not None and index != given:
                    raise ConfigError(
                        f"{entry.label()} is registered with index {index}, assigned {given}"
                    )
                index = given
            entries.append(RegistryEntry(entry.public_key, index, entry.name))
        return IdentityRegistryFile(entries)

    def __iter__(self) -> Iterator[RegistryEntry]:
        return iter(sorted(self._entries, key=_sort_key))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, index: object) -> bool:
        return index in self._by_index

    def to_json(self) -> dict[str, Any]:
        """The registry as the documented JSON document."""
        return {
            "format": REGISTRY_FORMAT,
            "version": REGISTRY_VERSION,
            "clients": [e.to_json() for e in self],
        }

    @classmethod
    def from_json(cls, doc: object, *, where: str = "registry") -> IdentityRegistryFile:
        """Validate and parse the documented JSON document."""
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: top level must be a JSON object")
        unknown = sorted(set(doc) - _REGISTRY_FIELDS)
        if unknown:
            raise ConfigError(f"{where}: unknown fields {unknown}")
        if doc.get("format") != REGISTRY_FORMAT:
            raise ConfigError(f"{where}: 'format' must be {REGISTRY_FORMAT!r}")
        version = doc.get("version")
        if version != REGISTRY_VERSION or isinstance(version, bool):
            raise ConfigError(
                f"{where}: unsupported version {version!r} (this library reads {REGISTRY_VERSION})"
            )
        clients = doc.get("clients")
        if not isinstance(clients, list):
            raise ConfigError(f"{where}: 'clients' must be a list")
        registry = cls()
        for position, item in enumerate(clients):
            at = f"{where}: clients[{position}]"
            if not isinstance(item, dict):
                raise ConfigError(f"{at}: must be an object")
            unknown = sorted(set(item) - _ENTRY_FIELDS)
            if unknown:
                raise ConfigError(f"{at}: unknown fields {unknown}")
            if "public_key" not in item:
                raise ConfigError(f"{at}: missing 'public_key'")
            key = parse_public_key(item["public_key"], where=f"{at}.public_key")
            try:
                registry.add(RegistryEntry(key, item.get("index"), item.get("name")))
            except ConfigError as exc:
                raise ConfigError(f"{at}: {exc}") from None
        return registry

    def __repr__(self) -> str:
        return f"IdentityRegistryFile({len(self)} clients)"


def _sort_key(entry: RegistryEntry) -> tuple[int, int, str]:
    if entry.index is None:
        return (1, 0, entry.name or "")
    return (0, entry.index, entry.name or "")


# -- files ------------------------------------------------------------------------------------


def load_registry(path: str | os.PathLike[str]) -> IdentityRegistryFile:
    """Read and validate a registry file; refuses one writable by group or others.

    Whoever can write the registry decides whose signatures count, so it is held to the
    same standard as an identity key file's secrecy.
    """
    p = Path(path)
    _refuse_open_mode(p, "registry", 0o022, "is writable by group or others", "chmod go-w")
    return IdentityRegistryFile.from_json(_read_json(p, "registry"), where=f"registry {p}")


def save_registry(registry: IdentityRegistryFile, path: str | os.PathLike[str]) -> None:
    """Write ``registry`` atomically (mode 0644: it holds public keys only)."""
    text = json.dumps(registry.to_json(), indent=2) + "\n"
    _write_atomic(Path(path), text, 0o644)
