"""Typed, immutable protocol messages (PROTOCOL.md, "Rounds"), re-exported by `messages`.

Client messages carry ``sender`` (the client's index, 1..n); server messages are addressed by
the transport. Every message carries the ``session_id`` it belongs to. Each message type
belongs to exactly one round, so its type says which round it is for.

Messages validate on construction (:mod:`secagg.protocol.fields`): a message with a field of
the wrong type, size or range cannot be built, and trying raises
:class:`~secagg.errors.MalformedMessageError`, the one error a session catches to blame a peer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from secagg.crypto import aead
from secagg.crypto.keys import KEY_BYTES
from secagg.crypto.shamir import SHARE_BYTES
from secagg.crypto.signing import SIGNATURE_BYTES
from secagg.errors import ConfigError, MalformedMessageError
from secagg.protocol.derive import NONCE_BYTES, SHARE_PLAINTEXT_BYTES
from secagg.protocol.fields import (
    check_blob,
    check_blob_map,
    check_index,
    check_index_map,
    check_indices,
    check_session_id,
    check_text,
    check_vector,
)

__all__ = [
    "CIPHERTEXT_BYTES",
    "COMMITMENT_BYTES",
    "SERVER_SENDER",
    "Abort",
    "AdvertiseKeys",
    "ClientMessage",
    "CommitmentsBroadcast",
    "ConsistencyRequest",
    "ConsistencySignature",
    "EncryptedShares",
    "KeysBroadcast",
    "MaskedInput",
    "PublicKeys",
    "RevealNonce",
    "Round",
    "RoundComplete",
    "ServerMessage",
    "SharesDelivery",
    "UnmaskRequest",
    "UnmaskResponse",
]

SERVER_SENDER = 0
COMMITMENT_BYTES = 32  # C_u, a SHA-256 digest
CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + aead.OVERHEAD  # one sealed pair of shares


class Round(IntEnum):
    """The protocol's rounds, in order."""

    ADVERTISE_KEYS = 0
    SHARE_KEYS = 1
    MASKED_INPUT = 2
    CONSISTENCY_CHECK = 3
    UNMASKING = 4

    @property
    def label(self) -> str:
        """The round's name in reports and on the command line, e.g. ``"masked-input"``."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, value: int | str | Round) -> Round:
        """A round given as a number (0..4), a label (``"masked-input"``) or a Round.

        Raises :class:`~secagg.errors.ConfigError` for anything else.
        """
        if isinstance(value, Round):
            return value
        labels = {r.label: r for r in cls}
        if isinstance(value, str):
            key = value.strip().lower().replace("_", "-")
            if key in labels:
                return labels[key]
            if not key.isdigit():
                raise ConfigError(f"unknown round {value!r}; expected one of {sorted(labels)}")
            value = int(key)
        if isinstance(value, bool) or not isinstance(value, int) or value not in range(len(cls)):
            raise ConfigError(f"round must be 0..4 or one of {sorted(labels)}, got {value!r}")
        return cls(value)


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """A client's advertised round keys (and, in malicious mode, its seed commitment C_u and
    its signature over keys and commitment)."""

    enc_public: bytes
    mask_public: bytes
    signature: bytes = b""
    commitment: bytes = b""

    def __post_init__(self) -> None:
        check_blob("enc_public", self.enc_public, KEY_BYTES)
        check_blob("mask_public", self.mask_public, KEY_BYTES)
        check_blob("signature", self.signature, 0, SIGNATURE_BYTES)
        check_blob("commitment", self.commitment, 0, COMMITMENT_BYTES)


@dataclass(frozen=True, slots=True)
class AdvertiseKeys:
    """Round 0, client -> server."""

    session_id: bytes
    sender: int
    keys: PublicKeys

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index("sender", self.sender)
        if not isinstance(self.keys, PublicKeys):
            raise MalformedMessageError(
                f"keys: expected PublicKeys, got {type(self.keys).__name__}"
            )


@dataclass(frozen=True, slots=True)
class CommitmentsBroadcast:
    """Round 0 (malicious mode), server -> client: the seed commitment C_u of every client in
    U1, fixed before anyone reveals a nonce."""

    session_id: bytes
    commitments: Mapping[int, bytes]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_blob_map("commitments", self.commitments, COMMITMENT_BYTES)


@dataclass(frozen=True, slots=True)
class RevealNonce:
    """Round 0 (malicious mode), client -> server: the nonce r_u behind its commitment."""

    session_id: bytes
    sender: int
    nonce: bytes

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index("sender", self.sender)
        check_blob("nonce", self.nonce, NONCE_BYTES)


@dataclass(frozen=True, slots=True)
class KeysBroadcast:
    """Round 0 -> 1, server -> client: keys of the recipient's neighbours in U1, and its own.

    Malicious mode: ``nonces`` holds the revealed nonce of every client in the commitment list.
    """

    session_id: bytes
    keys: Mapping[int, PublicKeys]
    nonces: Mapping[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index_map("keys", self.keys, _public_keys)
        check_blob_map("nonces", self.nonces, NONCE_BYTES)


@dataclass(frozen=True, slots=True)
class EncryptedShares:
    """Round 1, client -> server: one ciphertext per neighbour (recipient index -> blob)."""

    session_id: bytes
    sender: int
    ciphertexts: Mapping[int, bytes]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index("sender", self.sender)
        check_blob_map("ciphertexts", self.ciphertexts, CIPHERTEXT_BYTES)


@dataclass(frozen=True, slots=True)
class SharesDelivery:
    """Round 1 -> 2, server -> client: ciphertexts addressed to it (sender index -> blob)."""

    session_id: bytes
    ciphertexts: Mapping[int, bytes]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_blob_map("ciphertexts", self.ciphertexts, CIPHERTEXT_BYTES)


@dataclass(frozen=True, slots=True, eq=False)
class MaskedInput:
    """Round 2, client -> server: y_u, D ring words."""

    session_id: bytes
    sender: int
    vector: npt.NDArray[np.unsignedinteger]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index("sender", self.sender)
        check_vector("vector", self.vector)


@dataclass(frozen=True, slots=True)
class ConsistencyRequest:
    """Round 2 -> 3 (malicious mode), server -> client: U3, the clients whose input arrived."""

    session_id: bytes
    survivors: tuple[int, ...]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_indices("survivors", self.survivors)


@dataclass(frozen=True, slots=True)
class ConsistencySignature:
    """Round 3, client -> server: signature over (session_id, context_digest, U3)."""

    session_id: bytes
    sender: int
    signature: bytes

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index("sender", self.sender)
        check_blob("signature", self.signature, SIGNATURE_BYTES)


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """Round -> 4, server -> client: U3 (and in malicious mode the signatures over it)."""

    session_id: bytes
    survivors: tuple[int, ...]
    signatures: Mapping[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_indices("survivors", self.survivors)
        check_blob_map("signatures", self.signatures, SIGNATURE_BYTES)


@dataclass(frozen=True, slots=True)
class UnmaskResponse:
    """Round 4, client -> server: for each neighbour v (and itself) exactly one kind of share.

    ``self_mask_shares`` hold shares of b_v for v in U3; ``key_shares`` hold shares of s_sk_v for
    v in U2 \\ U3. Values are encoded :class:`~secagg.crypto.shamir.Share` objects.
    """

    session_id: bytes
    sender: int
    self_mask_shares: Mapping[int, bytes]
    key_shares: Mapping[int, bytes]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_index("sender", self.sender)
        check_blob_map("self_mask_shares", self.self_mask_shares, SHARE_BYTES)
        check_blob_map("key_shares", self.key_shares, SHARE_BYTES)


@dataclass(frozen=True, slots=True)
class Abort:
    """Either direction: the sender ends its part in the round. ``sender`` 0 is the server."""

    session_id: bytes
    sender: int
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        # A peer that gives up may not even hold the right session id: up to 32 bytes pass.
        check_session_id(self.session_id, allow_short=True)
        check_index("sender", self.sender, minimum=SERVER_SENDER)
        # Long texts are cut, not refused: an abort must always be expressible.
        object.__setattr__(self, "reason", check_text("reason", self.reason))
        object.__setattr__(self, "detail", check_text("detail", self.detail))


@dataclass(frozen=True, slots=True)
class RoundComplete:
    """Server -> client after unmasking: which clients' inputs are in the sum."""

    session_id: bytes
    included: tuple[int, ...]

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_indices("included", self.included)


ClientMessage = (
    AdvertiseKeys
    | RevealNonce
    | EncryptedShares
    | MaskedInput
    | ConsistencySignature
    | UnmaskResponse
    | Abort
)
ServerMessage = (
    CommitmentsBroadcast
    | KeysBroadcast
    | SharesDelivery
    | ConsistencyRequest
    | UnmaskRequest
    | RoundComplete
    | Abort
)


def _public_keys(what: str, value: object) -> None:
    if not isinstance(value, PublicKeys):
        raise MalformedMessageError(f"{what}: expected PublicKeys, got {type(value).__name__}")
