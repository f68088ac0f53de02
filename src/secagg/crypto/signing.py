"""Ed25519 identity keys: sign and verify canonical bytes."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from secagg.crypto.entropy import RandomSource, default_random
from secagg.errors import InvalidKeyError, SignatureError

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "SigningKey",
    "is_weak_public_key",
    "verify_signature",
]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_SEED_BYTES = 32
_P = 2**255 - 19
# y of the order-8 points (x, +-y8); with y = 0 (order 4), 1 (the neutral element, order 1) and
# p - 1 (order 2) these are the y-coordinates of all eight points of order dividing 8.
_Y8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})


class SigningKey:
    """An Ed25519 private key. Build with :meth:`generate` or :meth:`from_seed`."""

    __slots__ = ("_key", "public_bytes")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_bytes: bytes = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls, rng: RandomSource | None = None) -> SigningKey:
        """A fresh identity key from ``rng`` (default: the OS CSPRNG)."""
        return cls.from_seed((rng or default_random()).random_bytes(_SEED_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Load from the 32-byte RFC 8032 private seed."""
        if not isinstance(seed, bytes) or len(seed) != _SEED_BYTES:
            raise InvalidKeyError(f"Ed25519 private seed must be {_SEED_BYTES} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        """The 32-byte private seed (secret: never log it)."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, message: bytes) -> bytes:
        """A 64-byte signature over ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_bytes.hex()[:16]}...)"


def is_weak_public_key(public: bytes) -> bool:
    """Whether ``public`` encodes a point of small order (1, 2, 4 or 8) or is non-canonical.

    Under such a key signatures prove nothing: under the neutral element, for one, the
    constant signature ``01 00..00 | 00..00`` verifies for every message (OpenSSL accepts it).
    Both x-signs and the non-canonical encodings (y >= p) are covered.
    """
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    return y >= _P or y in _SMALL_ORDER_Y


def verify_signature(public: bytes, signature: bytes, message: bytes) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
    if not isinstance(public, bytes) or len(public) != PUBLIC_KEY_BYTES:
        raise InvalidKeyError(f"Ed25519 public key must be {PUBLIC_KEY_BYTES} bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"signature must be {SIGNATURE_BYTES} bytes")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    except ValueError:
        raise InvalidKeyError("Ed25519 public key is not a valid point") from None
