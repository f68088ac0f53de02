"""Typed, immutable protocol messages (PROTOCOL.md, "Rounds").

Client messages carry ``sender`` (the client's index, 1..n); server messages are addressed by
the transport. Every message carries the ``session_id`` it belongs to. Each message type
belongs to exactly one round, so its type says which round it is for.

Messages validate on construction (:mod:`secagg.protocol.fields`): a message with a field of
the wrong type, size or range cannot be built, and trying raises
:class:`~secagg.errors.MalformedMessageError`, the one error a session catches to blame a peer.

The message types live in :mod:`secagg.protocol.message_types` and the whole-message helpers
(:func:`checked_client_message`, :func:`checked_server_message`, :func:`message_size`) in
:mod:`secagg.protocol.message_checks`; this module is where both are imported from.
"""

from __future__ import annotations

from secagg.protocol.message_checks import (
    checked_client_message,
    checked_server_message,
    message_size,
)
from secagg.protocol.message_types import (
    CIPHERTEXT_BYTES,
    COMMITMENT_BYTES,
    SERVER_SENDER,
    Abort,
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    ConsistencyRequest,
    ConsistencySignature,
    EncryptedShares,
    KeysBroadcast,
    MaskedInput,
    PublicKeys,
    RevealNonce,
    Round,
    RoundComplete,
    ServerMessage,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
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
    "checked_client_message",
    "checked_server_message",
    "message_size",
]
