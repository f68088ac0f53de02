"""X25519 key pairs and key agreement that refuses low-order points."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from secagg.crypto.entropy import RandomSource, default_random
from secagg.errors import InvalidKeyError, KeyAgreementError

__all__ = ["KEY_BYTES", "X25519KeyPair", "validate_public_key"]

KEY_BYTES = 32

# Encodings of the points of small order on Curve25519 (and their non-canonical twins,
# u + p); a peer offering one of these would force a predictable shared secret.
_LOW_ORDER_POINTS = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
        "4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
        "d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
)


def _clear_top_bit(public: bytes) -> bytes:
    # X25519 ignores bit 255 (RFC 7748), so an encoding with it set is the same point.
    return public[:31] + bytes([public[31] & 0x7F])


_LOW_ORDER_CLEARED = frozenset(_clear_top_bit(p) for p in _LOW_ORDER_POINTS)


def validate_public_key(public: bytes) -> None:
    """Raise :class:`InvalidKeyError` unless ``public`` is a 32-byte non-low-order point."""
    if not isinstance(public, bytes) or len(public) != KEY_BYTES:
        got = len(public) if isinstance(public, bytes | bytearray) else type(public).__name__
        raise InvalidKeyError(f"X25519 public key must be {KEY_BYTES} bytes, got {got}")
    if _clear_top_bit(public) in _LOW_ORDER_CLEARED:
        raise InvalidKeyError("X25519 public key is a low-order point")


class X25519KeyPair:
    """An X25519 key pair. Build with :meth:`generate` or :meth:`from_private_bytes`."""

    __slots__ = ("_private", "public_bytes")

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public_bytes: bytes = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls, rng: RandomSource | None = None) -> X25519KeyPair:
        """A fresh key pair from ``rng`` (default: the OS CSPRNG)."""
        return cls.from_private_bytes((rng or default_random()).random_bytes(KEY_BYTES))

    @classmethod
    def from_private_bytes(cls, private: bytes) -> X25519KeyPair:
        """Load a key pair from its 32-byte private scalar."""
        if not isinstance(private, bytes) or len(private) != KEY_BYTES:
            raise InvalidKeyError(f"X25519 private key must be {KEY_BYTES} bytes")
        return cls(X25519PrivateKey.from_private_bytes(private))

    def private_bytes(self) -> bytes:
        """The 32-byte private scalar (secret: never log it)."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def exchange(self, peer_public: bytes) -> bytes:
        """The 32-byte X25519 shared secret with ``peer_public``.

        Raises :class:`InvalidKeyError` for a malformed or low-order peer key and
        :class:`KeyAgreementError` if the shared secret is all zeros.
        """
        validate_public_key(peer_public)
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError:
            # OpenSSL refuses an all-zero result; report it as the typed error.
            raise KeyAgreementError("X25519 agreement produced an all-zero secret") from None
        if hmac.compare_digest(shared, bytes(KEY_BYTES)):
            raise KeyAgreementError("X25519 agreement produced an all-zero secret")
        return shared

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self.public_bytes.hex()[:16]}...)"
