"""Checks and sizes of whole protocol messages (re-exported by :mod:`secagg.protocol.messages`).

:func:`checked_client_message` / :func:`checked_server_message` check a message again at a
session's door; :func:`message_size` counts the protocol's share of the traffic.
"""

from __future__ import annotations

from secagg.errors import MalformedMessageError
from secagg.protocol.message_types import (
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
    RoundComplete,
    ServerMessage,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)

__all__ = ["checked_client_message", "checked_server_message", "message_size"]

_INDEX = 4  # bytes of an index on the wire, for size accounting


def checked_client_message(msg: object) -> ClientMessage:
    """``msg`` if it is a well-formed client message, else :class:`MalformedMessageError`.

    Construction already validates; checking again at a session's door costs O(entries) and
    means an object built around the constructor (``object.__new__``, ``copy``) is blamed on
    its sender as malformed, never surfacing as a TypeError deep inside a handler.
    """
    if not isinstance(msg, ClientMessage):  # the union of the client message types
        raise MalformedMessageError(f"expected a client message, got {type(msg).__name__}")
    _recheck(msg)
    return msg


def checked_server_message(msg: object) -> ServerMessage:
    """``msg`` if it is a well-formed server message, else :class:`MalformedMessageError`."""
    if not isinstance(msg, ServerMessage):
        raise MalformedMessageError(f"expected a server message, got {type(msg).__name__}")
    _recheck(msg)
    return msg


def _recheck(msg: ClientMessage | ServerMessage) -> None:
    """Run the construction checks again, and those of the PublicKeys a KeysBroadcast relays
    (their own constructor checked them once; the broadcast's constructor checks their type).
    A client's own advertised keys are judged by the server session (``invalid-key``)."""
    msg.__post_init__()
    if isinstance(msg, KeysBroadcast):
        for keys in msg.keys.values():
            keys.__post_init__()


def _keys_size(k: PublicKeys) -> int:
    return len(k.enc_public) + len(k.mask_public) + len(k.signature) + len(k.commitment)


def message_size(msg: ClientMessage | ServerMessage) -> int:
    """Payload bytes of a message as the protocol counts them (ids, keys, blobs, vectors).

    A transport adds its own framing; this is the protocol's share of the traffic.
    """
    size = len(msg.session_id)
    match msg:
        case AdvertiseKeys(keys=k):
            size += _INDEX + _keys_size(k)
        case RevealNonce(nonce=r):
            size += _INDEX + len(r)
        case CommitmentsBroadcast(commitments=c):
            size += sum(_INDEX + len(x) for x in c.values())
        case KeysBroadcast(keys=keys, nonces=nonces):
            size += sum(_INDEX + _keys_size(k) for k in keys.values())
            size += sum(_INDEX + len(r) for r in nonces.values())
        case EncryptedShares(ciphertexts=cts) | SharesDelivery(ciphertexts=cts):
            size += _INDEX + sum(_INDEX + len(c) for c in cts.values())
        case MaskedInput(vector=v):
            size += _INDEX + v.nbytes
        case ConsistencyRequest(survivors=s):
            size += _INDEX * len(s)
        case ConsistencySignature(signature=sig):
            size += _INDEX + len(sig)
        case UnmaskRequest(survivors=s, signatures=sigs):
            size += _INDEX * len(s) + sum(_INDEX + len(x) for x in sigs.values())
        case UnmaskResponse(self_mask_shares=a, key_shares=b):
            size += _INDEX + sum(_INDEX + len(x) for x in (*a.values(), *b.values()))
        case Abort(reason=r, detail=d):
            size += _INDEX + len(r) + len(d)
        case RoundComplete(included=inc):
            size += _INDEX * len(inc)
    return size
