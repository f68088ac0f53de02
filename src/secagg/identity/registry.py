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

Identity key file (JSON, permissions 0600, never printed)::

    {"format": "secagg-identity", "version": 1, "algorithm": "ed25519",
     "private_seed": "<64 hex digits>", "public_key": "<64 hex digits>"}

and its public half, ``<file>.pub``::

    {"format": "secagg-identity-public", "version": 1, "algorithm": "ed25519",
     "public_key": "<64 hex digits>"}

Every failure raises :class:`~secagg.errors.ConfigError` naming the file and the problem; no
message ever contains private key material.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.signing import PUBLIC_KEY_BYTES, SigningKey, is_weak_public_key
from secagg.errors import ConfigError, InvalidKeyError

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
IDENTITY_FORMAT = "secagg-identity"
PUBLIC_IDENTITY_FORMAT = "secagg-identity-public"
REGISTRY_VERSION = 1
_ALGORITHM = "ed25519"
MAX_INDEX = 2**32 - 1
MAX_NAME = 256
_ENTRY_FIELDS = frozenset({"index", "name", "public_key"})
_REGISTRY_FIELDS = frozenset({"format", "version", "clients"})


def parse_public_key(text: object, *, where: str = "public key") -> bytes:
    """A raw 32-byte Ed25519 public key from 64 hex digits or base64; validated as a point."""
    if not isinstance(text, str):
        raise ConfigError(f"{where}: must be a string of hex or base64, got {type(text).__name__}")
    value = text.strip()
    raw: bytes | None = None
    if len(value) == 2 * PUBLIC_KEY_BYTES:
        with contextlib.suppress(ValueError):
            raw = bytes.fromhex(value)
    if raw is None:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != PUBLIC_KEY_BYTES:
        raise ConfigError(
            f"{where}: expected a {PUBLIC_KEY_BYTES}-byte Ed25519 public key as "
            f"{2 * PUBLIC_KEY_BYTES} hex digits or base64"
        )
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigError(f"{where}: not a valid Ed25519 public key") from None
    _refuse_weak(raw, where)
    return raw


def _refuse_weak(raw: bytes, where: str) -> None:
    if is_weak_public_key(raw):
        raise ConfigError(
            f"{where}: a small-order or non-canonical Ed25519 point, under which forged "
            "signatures verify; expected a key from 'secagg keys generate'"
        )


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


def _read_json(path: Path, what: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.__class__.__name__}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None


def _temp_path(path: Path) -> Path:
    """An unpredictable sibling of ``path`` to write before the rename."""
    suffix = default_random().random_bytes(8).hex()
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{suffix}")


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a fresh temporary file with ``mode`` in the same directory, then rename.

    The temporary file is created with O_EXCL | O_NOFOLLOW: a file or symlink planted at its
    path makes the write fail instead of sending a private key wherever the link points.
    """
    tmp = _temp_path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: creating {tmp.name} failed ({exc.strerror or exc}); "
            "something already exists at that path"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)  # whatever the umask made of it
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


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


def generate_identity(rng: RandomSource | None = None) -> SigningKey:
    """A fresh Ed25519 identity key (default: the OS CSPRNG)."""
    return SigningKey.generate(rng)


def public_path_for(path: str | os.PathLike[str]) -> Path:
    """Where :func:`save_identity` writes the public half of the identity at ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".pub")


def save_identity(
    key: SigningKey, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the identity to ``path`` (mode 0600) and its public half to ``path.pub``.

    Returns the public file's path. Refuses to replace an existing file unless ``overwrite``.
    """
    p = Path(path)
    pub = public_path_for(p)
    if not overwrite:
        for target in (p, pub):
            if target.exists():
                raise ConfigError(f"{target} exists; refusing to overwrite an identity")
    public_hex = key.public_bytes.hex()
    private_doc = {
        "format": IDENTITY_FORMAT,
        "version": REGISTRY_VERSION,
        "algorithm": _ALGORITHM,
        "private_seed": key.seed().hex(),
        "public_key": public_hex,
    }
    public_doc = {
        "format": PUBLIC_IDENTITY_FORMAT,
        "version": REGISTRY_VERSION,
        "algorithm": _ALGORITHM,
        "public_key": public_hex,
    }
    _write_atomic(p, json.dumps(private_doc, indent=2) + "\n", 0o600)
    _write_atomic(pub, json.dumps(public_doc, indent=2) + "\n", 0o644)
    return pub


def load_identity(path: str | os.PathLike[str]) -> SigningKey:
    """Read an identity key file; refuses one readable by group or others (like ssh)."""
    p = Path(path)
    _refuse_open_mode(p, "identity file", 0o077, "is accessible by group or others", "chmod 600")
    doc = _read_json(p, "identity file")
    if not isinstance(doc, dict) or doc.get("format") != IDENTITY_FORMAT:
        raise ConfigError(f"{p} is not a secagg identity file (format {IDENTITY_FORMAT!r})")
    if doc.get("version") != REGISTRY_VERSION or doc.get("algorithm") != _ALGORITHM:
        raise ConfigError(f"{p}: unsupported identity version or algorithm")
    seed_hex = doc.get("private_seed")
    try:
        if not isinstance(seed_hex, str):
            raise ValueError
        key = SigningKey.from_seed(bytes.fromhex(seed_hex))
    except (ValueError, InvalidKeyError):
        raise ConfigError(f"{p}: 'private_seed' must be 64 hex digits") from None
    stated = doc.get("public_key")
    if stated is not None and stated != key.public_bytes.hex():
        raise ConfigError(f"{p}: 'public_key' does not match the private seed")
    return key


def load_public_key(source: str | os.PathLike[str]) -> bytes:
    """An identity public key from a ``.pub`` file, an identity file, or a literal hex/base64 key.

    A path that exists is read as a file; otherwise ``source`` is parsed as a key.
    """
    p = Path(source)
    try:
        is_file = p.is_file()
    except OSError:  # e.g. a base64 string too long to be a path
        is_file = False
    if not is_file:
        return parse_public_key(str(source), where="identity public key")
    doc = _read_json(p, "public key file")
    if isinstance(doc, dict) and doc.get("format") in (PUBLIC_IDENTITY_FORMAT, IDENTITY_FORMAT):
        if doc.get("format") == IDENTITY_FORMAT:
            return load_identity(p).public_bytes
        return parse_public_key(doc.get("public_key"), where=f"{p}: public_key")
    raise ConfigError(f"{p} is neither a secagg identity nor a .pub file")


def _refuse_open_mode(p: Path, what: str, forbidden: int, problem: str, fix: str) -> None:
    """Refuse a missing file, or one whose mode has any ``forbidden`` permission bit."""
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if os.name == "posix" and mode & forbidden:
        raise ConfigError(f"{what} {p} {problem} (mode {mode:04o}); run: {fix} {p}")
