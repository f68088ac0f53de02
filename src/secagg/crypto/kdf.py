"""HKDF-SHA256 with the labels and info layout of PROTOCOL.md.

``info`` is the ASCII label followed by each index as a 4-byte big-endian unsigned integer;
``salt`` is the session id, so every derived key is bound to one round.
"""

from __future__ import annotations

import struct
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secagg.errors import ConfigError, InvalidKeyError

__all__ = ["INDEX_BYTES", "Label", "derive_key", "kdf_info"]

INDEX_BYTES = 4
_MAX_INDEX = 2 ** (8 * INDEX_BYTES) - 1
_MAX_LENGTH = 255 * 32  # RFC 5869: at most 255 blocks of the hash output


class Label(StrEnum):
    """The purposes a key is derived for."""

    ENC = "secagg/v1/enc"
    PAIR_MASK = "secagg/v1/pair-mask"
    SELF_MASK = "secagg/v1/self-mask"


# Encoded once: a server derives one key per survivor and per (dropped, neighbour) pair.
_LABEL_BYTES = {label: label.value.encode("ascii") for label in Label}
_SHA256 = hashes.SHA256()


def kdf_info(label: Label, *indices: int) -> bytes:
    """The HKDF ``info`` string: label bytes, then each index big-endian in 4 bytes."""
    for i in indices:
        if not 0 <= i <= _MAX_INDEX:
            raise InvalidKeyError(f"index {i} out of range 0..{_MAX_INDEX}")
    return _LABEL_BYTES[label] + struct.pack(f">{len(indices)}I", *indices)


def derive_key(
    secret: bytes, session_id: bytes, label: Label, *indices: int, length: int = 32
) -> bytes:
    """Derive ``length`` bytes from ``secret`` for ``label`` and ``indices`` in one session."""
    if len(secret) < 16:
        raise InvalidKeyError(f"KDF input secret must be at least 16 bytes, got {len(secret)}")
    if len(session_id) != 32:
        raise InvalidKeyError(f"session id must be 32 bytes, got {len(session_id)}")
    if not 1 <= length <= _MAX_LENGTH:
        raise ConfigError(f"derived key length must be in 1..{_MAX_LENGTH}, got {length}")
    hkdf = HKDF(algorithm=_SHA256, length=length, salt=session_id, info=kdf_info(label, *indices))
    return hkdf.derive(secret)
