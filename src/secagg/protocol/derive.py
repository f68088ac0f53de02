"""Key derivations both sides compute the same way (PROTOCOL.md, "Primitives")."""

from __future__ import annotations

import struct

from secagg.crypto.kdf import Label, derive_key
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.prg import PRG_KEY_BYTES
from secagg.crypto.shamir import SHARE_BYTES, Share
from secagg.errors import DecryptionError, ShareError

__all__ = [
    "SHARE_PLAINTEXT_BYTES",
    "decode_share_plaintext",
    "enc_key",
    "encode_share_plaintext",
    "pair_mask_key",
    "self_mask_key",
    "share_aad",
    "signed_keys_message",
    "signed_survivors_message",
]

_PAIR = struct.Struct(">II")
SHARE_PLAINTEXT_BYTES = _PAIR.size + 2 * SHARE_BYTES


def _ordered(u: int, v: int) -> tuple[int, int]:
    return (u, v) if u < v else (v, u)


def pair_mask_key(
    mask_keys: X25519KeyPair, peer_mask_public: bytes, session_id: bytes, u: int, v: int
) -> bytes:
    """PRG key of the pairwise mask between u and v (symmetric in u, v)."""
    shared = mask_keys.exchange(peer_mask_public)
    return derive_key(shared, session_id, Label.PAIR_MASK, *_ordered(u, v), length=PRG_KEY_BYTES)


def self_mask_key(seed: bytes, session_id: bytes, u: int) -> bytes:
    """PRG key of u's self mask, from its 32-byte seed b_u."""
    return derive_key(seed, session_id, Label.SELF_MASK, u, length=PRG_KEY_BYTES)


def enc_key(
    enc_keys: X25519KeyPair, peer_enc_public: bytes, session_id: bytes, u: int, v: int
) -> bytes:
    """AES-256-GCM key for share ciphertexts between u and v (symmetric in u, v)."""
    shared = enc_keys.exchange(peer_enc_public)
    return derive_key(shared, session_id, Label.ENC, *_ordered(u, v), length=32)


def share_aad(session_id: bytes, sender: int, recipient: int) -> bytes:
    """Associated data of a share ciphertext: session id, then (sender, recipient)."""
    return session_id + _PAIR.pack(sender, recipient)


def encode_share_plaintext(
    sender: int, recipient: int, key_share: Share, seed_share: Share
) -> bytes:
    """sender, recipient, share of s_sk, share of b (big-endian indices, 68-byte shares)."""
    return _PAIR.pack(sender, recipient) + key_share.to_bytes() + seed_share.to_bytes()


def decode_share_plaintext(data: bytes, sender: int, recipient: int) -> tuple[Share, Share]:
    """Inverse of :func:`encode_share_plaintext`; checks the pair it names."""
    if len(data) != SHARE_PLAINTEXT_BYTES or _PAIR.unpack_from(data) != (sender, recipient):
        raise DecryptionError
    body = data[_PAIR.size :]
    try:
        return Share.from_bytes(body[:SHARE_BYTES]), Share.from_bytes(body[SHARE_BYTES:])
    except ShareError:
        raise DecryptionError from None


def signed_keys_message(
    session_id: bytes, sender: int, enc_public: bytes, mask_public: bytes
) -> bytes:
    """What a malicious-mode client signs in round 0."""
    return (
        b"secagg/v1/advertise" + session_id + struct.pack(">I", sender) + enc_public + mask_public
    )


def signed_survivors_message(
    session_id: bytes, context_digest: bytes, survivors: tuple[int, ...]
) -> bytes:
    """What a malicious-mode client signs in round 3: (session_id, context_digest, U3)."""
    return (
        b"secagg/v1/consistency"
        + session_id
        + context_digest
        + struct.pack(f">I{len(survivors)}I", len(survivors), *survivors)
    )
