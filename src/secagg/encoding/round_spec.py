"""RoundSpec: what the clients' vectors mean, announced by the server and bound into the round.

A round sums vectors of integers mod 2^b; what those integers stand for (quantized floats with
some clip and scale, weights, DP noise, analytics buckets, or plain integers) is the round's
*spec*. The server sends the spec's canonical bytes in ``Welcome.spec`` and puts
:func:`spec_digest` of them into the :class:`~secagg.protocol.config.RoundConfig`, so it
enters the session id: a client that encodes with another spec refuses the round
(``spec-mismatch``), and a decoder that is handed another spec refuses the sum.

Canonical encoding (version 1): a UTF-8 JSON object with the keys ``kind`` (a string naming
the spec family: ``"encoding"`` for float encodings, others such as ``"query"`` are added by
their modules) and ``version`` (1) plus the family's fields, serialized with sorted keys, no
whitespace (separators ``,`` and ``:``), ASCII only, no NaN/Infinity, floats in their shortest
round-trip form. Decoding refuses anything that does not re-encode to the same bytes, so two
equal specs always have one encoding and one digest. Plain integer rounds ("raw") announce no
spec: empty bytes, and an all-zero digest.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secagg.errors import ConfigError

__all__ = [
    "MAX_SPEC_BYTES",
    "RAW_SPEC_DIGEST",
    "SPEC_DIGEST_BYTES",
    "SPEC_VERSION",
    "RoundSpec",
    "spec_digest",
]

SPEC_VERSION = 1
SPEC_DIGEST_BYTES = 32
RAW_SPEC_DIGEST = bytes(SPEC_DIGEST_BYTES)
MAX_SPEC_BYTES = 64 * 1024
_LABEL = b"secagg/v1/round-spec"
_RESERVED = frozenset({"kind", "version"})


def spec_digest(encoded: bytes) -> bytes:
    """The 32-byte digest of a canonical spec encoding; all zeros for the empty (raw) spec."""
    if not isinstance(encoded, bytes):
        raise ConfigError(f"spec encoding must be bytes, got {type(encoded).__name__}")
    if not encoded:
        return RAW_SPEC_DIGEST
    return hashlib.sha256(_LABEL + encoded).digest()


@dataclass(frozen=True)
class RoundSpec:
    """A spec: its ``kind`` and JSON-valued ``fields`` (never the reserved kind/version)."""

    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind or self.kind == "raw":
            raise ConfigError(
                f"spec kind must be a non-empty string other than 'raw' (raw rounds announce "
                f"no spec), got {self.kind!r}"
            )
        if not isinstance(self.fields, Mapping):
            raise ConfigError(f"spec fields must be a mapping, got {type(self.fields).__name__}")
        clash = _RESERVED.intersection(self.fields)
        if clash:
            raise ConfigError(f"spec fields cannot be named {sorted(clash)} (reserved)")
        self.encode()  # validates that every value is canonical JSON

    def encode(self) -> bytes:
        """The canonical bytes (see the module docstring)."""
        obj = {**self.fields, "kind": self.kind, "version": SPEC_VERSION}
        _check_json(obj, "spec")
        try:
            text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"spec is not JSON-serializable: {exc}") from None
        data = text.encode("ascii")
        if len(data) > MAX_SPEC_BYTES:
            raise ConfigError(f"spec encoding has {len(data)} bytes; at most {MAX_SPEC_BYTES}")
        return data

    @property
    def digest(self) -> bytes:
        """:func:`spec_digest` of :meth:`encode`."""
        return spec_digest(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> RoundSpec:
        """Parse canonical spec bytes; refuses non-canonical or unknown-version encodings."""
        if not isinstance(data, bytes) or not data:
            raise ConfigError("spec encoding must be non-empty bytes (raw rounds have no spec)")
        if len(data) > MAX_SPEC_BYTES:
            raise ConfigError(f"spec encoding has {len(data)} bytes; at most {MAX_SPEC_BYTES}")
        try:
            obj = json.loads(data.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise ConfigError("spec encoding is not ASCII JSON") from None
        if not isinstance(obj, dict):
            raise ConfigError("spec encoding must be a JSON object")
        version = obj.pop("version", None)
        if version != SPEC_VERSION or isinstance(version, bool):
            raise ConfigError(f"spec version must be {SPEC_VERSION}, got {version!r}")
        kind = obj.pop("kind", None)
        spec = cls(kind, obj)  # __post_init__ checks the kind
        if spec.encode() != data:
            raise ConfigError(
                "spec encoding is not canonical (sorted keys, no whitespace, shortest floats)"
            )
        return spec

    def diff(self, other: RoundSpec) -> list[str]:
        """Human-readable differences, ``"name: this X, other Y"`` (specs hold no secrets)."""
        mine = {"kind": self.kind, **self.fields}
        theirs = {"kind": other.kind, **other.fields}
        return [
            f"{key}: {mine.get(key)!r} vs {theirs.get(key)!r}"
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key) != theirs.get(key)
        ]


def _check_json(value: Any, path: str) -> None:
    # Only values with one JSON spelling: no tuples vs lists ambiguity, no non-str keys.
    if value is None or isinstance(value, bool | str | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{path} must be finite, got {value!r}")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{path} has a non-string key {key!r}")
            _check_json(item, f"{path}.{key}")
        return
    raise ConfigError(f"{path} has a value of type {type(value).__name__}; use JSON types")
