"""AES-256-GCM with random 96-bit nonces; a sealed blob is ``nonce || ciphertext || tag``."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secagg.crypto.entropy import RandomSource, default_random
from secagg.errors import DecryptionError, InvalidKeyError

__all__ = ["KEY_BYTES", "NONCE_BYTES", "OVERHEAD", "TAG_BYTES", "open_sealed", "seal"]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES


def _cipher(key: bytes) -> AESGCM:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise InvalidKeyError(f"AES-256-GCM key must be {KEY_BYTES} bytes")
    return AESGCM(key)


def seal(key: bytes, plaintext: bytes, aad: bytes, rng: RandomSource | None = None) -> bytes:
    """Encrypt and authenticate ``plaintext``, binding ``aad``."""
    nonce = (rng or default_random()).random_bytes(NONCE_BYTES)
    return nonce + _cipher(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Decrypt a blob from :func:`seal`; any failure raises :class:`DecryptionError`."""
    cipher = _cipher(key)
    if not isinstance(sealed, bytes) or len(sealed) < OVERHEAD:
        raise DecryptionError
    try:
        return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionError from None
