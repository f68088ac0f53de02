"""Identity key files: a client's long-term Ed25519 key and its public half, and public keys.

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
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secagg.crypto.entropy import RandomSource
from secagg.crypto.signing import PUBLIC_KEY_BYTES, SigningKey, is_weak_public_key
from secagg.errors import ConfigError, InvalidKeyError
from secagg.identity._files import _read_json, _refuse_open_mode, _write_atomic

__all__ = [
    "IDENTITY_FORMAT",
    "PUBLIC_IDENTITY_FORMAT",
    "REGISTRY_VERSION",
    "generate_identity",
    "load_identity",
    "load_public_key",
    "parse_public_key",
    "public_path_for",
    "save_identity",
]

IDENTITY_FORMAT = "secagg-identity"
PUBLIC_IDENTITY_FORMAT = "secagg-identity-public"
REGISTRY_VERSION = 1  # the schema version of key files and of the registry file
_ALGORITHM = "ed25519"


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
