"""Key derivations both sides compute the same way (PROTOCOL.md, "Primitives")."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from functools import lru_cache

from secagg.crypto.kdf import Label, derive_key
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.prg import PRG_KEY_BYTES
from secagg.crypto.shamir import SHARE_BYTES, Share
from secagg.errors import DecryptionError, ShareError
from secagg.graph import NeighbourGraph

__all__ = [
    "NONCE_BYTES",
    "SHARE_PLAINTEXT_BYTES",
    "decode_share_plaintext",
    "derive_graph_seed",
    "enc_key",
    "encode_share_plaintext",
    "pair_mask_key",
    "round_graph",
    "seed_commitment",
    "self_mask_key",
    "share_aad",
    "signed_keys_message",
    "signed_survivors_message",
]

_PAIR = struct.Struct(">II")
_INDEX = struct.Struct(">I")
NONCE_BYTES = 32  # r_u, a client's contribution to the graph seed (malicious mode)
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
    session_id: bytes, sender: int, enc_public: bytes, mask_public: bytes, commitment: bytes
) -> bytes:
    """What a malicious-mode client signs in round 0: its keys and its seed commitment C_u."""
    return (
        b"secagg/v1/advertise"
        + session_id
        + _INDEX.pack(sender)
        + enc_public
        + mask_public
        + commitment
    )


def signed_survivors_message(
    session_id: bytes,
    graph_seed: bytes,
    context_digest: bytes,
    survivors: tuple[int, ...],
    signer_enc_public: bytes,
    signer_mask_public: bytes,
) -> bytes:
    """What a malicious-mode client signs in round 3.

    (session_id, derived graph seed, context_digest, U3, the signer's own round-0 public keys):
    the seed holds every client's fresh nonce, the verifier's own included, and the keys are
    fresh per session, so a signature from any other session never verifies (PROTOCOL.md,
    "Session binding").
    """
    return (
        b"secagg/v1/consistency"
        + session_id
        + graph_seed
        + context_digest
        + struct.pack(f">I{len(survivors)}I", len(survivors), *survivors)
        + signer_enc_public
        + signer_mask_public
    )


def seed_commitment(session_id: bytes, sender: int, nonce: bytes) -> bytes:
    """C_u = SHA-256("secagg/v1/seed-commit" || session_id || u || r_u)."""
    return hashlib.sha256(
        b"secagg/v1/seed-commit" + session_id + _INDEX.pack(sender) + nonce
    ).digest()


def derive_graph_seed(session_id: bytes, nonces: Mapping[int, bytes]) -> bytes:
    """The malicious-mode graph seed from the revealed nonces of every committed client.

    SHA-256("secagg/v1/graph-seed" || session_id || (u || r_u) for u ascending); nonces are
    fixed-size, so the encoding is unambiguous.
    """
    h = hashlib.sha256(b"secagg/v1/graph-seed" + session_id)
    for u in sorted(nonces):
        h.update(_INDEX.pack(u) + nonces[u])
    return h.digest()


@lru_cache(maxsize=8)
def round_graph(seed: bytes, num_clients: int, degree: int) -> NeighbourGraph:
    """The neighbour graph over clients 1..n for ``seed``.

    Cached: every session of one in-process round (simulation, tests) derives the same seed,
    and building the graph for n = 1000 takes a millisecond or two each time.
    """
    return NeighbourGraph(seed, range(1, num_clients + 1), degree)
