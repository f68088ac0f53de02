"""The registration handshake: the server's Challenge and the client's signed Hello.

The server opens every stream with 32 fresh random bytes; in malicious mode a Hello counts only
when it carries an Ed25519 signature over (challenge, name, dim) by the identity key the
server's registry lists for that name. A fresh challenge per stream means a Hello signature
seen once cannot be replayed on another stream, so nobody can take a registered name without
its key (and then get its owner turned away and blamed).
"""

from __future__ import annotations

import struct

from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.signing import SigningKey, verify_signature
from secagg.errors import CryptoError
from secagg.transport import secagg_pb2 as pb

__all__ = [
    "CHALLENGE_BYTES",
    "HELLO_LABEL",
    "challenge_frame",
    "hello_frame",
    "hello_message",
    "new_challenge",
    "verify_hello",
]

CHALLENGE_BYTES = 32
HELLO_LABEL = b"secagg/v1/hello"


def new_challenge(rng: RandomSource | None = None) -> bytes:
    """A fresh challenge nonce (default: the OS CSPRNG)."""
    return (rng or default_random()).random_bytes(CHALLENGE_BYTES)


def challenge_frame(nonce: bytes) -> bytes:
    """The serialized ServerFrame carrying ``nonce``."""
    return pb.ServerFrame(challenge=pb.Challenge(nonce=nonce)).SerializeToString()


def hello_message(nonce: bytes, name: str, dim: int) -> bytes:
    """What a client signs: label || nonce || len(name) (u32 BE) || name (UTF-8) || dim (u64 BE).

    The name is length-prefixed so that no (name, dim) pair can be re-read as another one.
    """
    raw = name.encode("utf-8")
    return HELLO_LABEL + nonce + struct.pack(">I", len(raw)) + raw + struct.pack(">Q", dim)


def hello_frame(
    protocol_version: int, name: str, dim: int, nonce: bytes, identity: SigningKey | None
) -> pb.ClientFrame:
    """A Hello, signed over ``nonce`` when the client holds an ``identity``."""
    signature = b"" if identity is None else identity.sign(hello_message(nonce, name, dim))
    return pb.ClientFrame(
        hello=pb.Hello(protocol_version=protocol_version, name=name, dim=dim, signature=signature)
    )


def verify_hello(public_key: bytes, nonce: bytes, hello: pb.Hello) -> bool:
    """Whether ``hello`` is signed over ``nonce`` by ``public_key`` (never raises)."""
    if len(nonce) != CHALLENGE_BYTES or not hello.signature:
        return False
    try:
        verify_signature(
            public_key, bytes(hello.signature), hello_message(nonce, hello.name, int(hello.dim))
        )
    except CryptoError:
        return False
    return True
