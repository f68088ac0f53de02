"""Protocol messages <-> protobuf frames (``secagg.v1``), validating everything that arrives.

Parsing never trusts the peer: a frame that does not decode, has no body, carries fields of the
wrong size or claims an impossible vector raises :class:`FrameError` with a stable
:class:`~secagg.reasons.DropReason`, which the server turns into a drop and the client into an
abort. :class:`FrameError` is a :class:`~secagg.errors.MalformedMessageError`: nothing else
escapes from decoding, whatever the bytes (the messages themselves validate on construction).
Masked inputs travel in chunks (:func:`masked_input_frames`) and are put back together by
:class:`VectorAssembler` straight into one preallocated array.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from google.protobuf.message import DecodeError

from secagg.errors import MalformedMessageError
from secagg.protocol.fields import MAX_TEXT, SESSION_ID_BYTES
from secagg.protocol.messages import (
    Abort,
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    ConsistencyRequest,
    ConsistencySignature,
    EncryptedShares,
    KeysBroadcast,
    PublicKeys,
    RevealNonce,
    RoundComplete,
    ServerMessage,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.reasons import DropReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.chunks import VectorAssembler, masked_input_frames
from secagg.transport.frame_error import FrameError
from secagg.transport.frame_error import session_id_field as _sid

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_NAME_LENGTH",
    "SESSION_ID_BYTES",
    "WIRE_VERSION",
    "FrameError",
    "VectorAssembler",
    "client_frame",
    "client_message",
    "masked_input_frames",
    "parse_client_frame",
    "parse_server_frame",
    "server_frame",
    "server_message",
]

WIRE_VERSION = 1
MAX_NAME_LENGTH = 128
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_CHUNK_BYTES = 1024 * 1024
_MAX_BLOB = 4096  # a share ciphertext, key, signature or share is far smaller
_F = TypeVar("_F")
_M = TypeVar("_M")


def _text(value: str) -> str:
    return value[:MAX_TEXT]


def _blob(value: bytes, what: str) -> bytes:
    if len(value) > _MAX_BLOB:
        raise FrameError(DropReason.OVERSIZED, f"{what} is {len(value)} bytes")
    return bytes(value)


def _index_map(values: Mapping[int, bytes], what: str) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for k, v in values.items():
        if k == 0:
            raise FrameError(DropReason.MALFORMED, f"{what} names client index 0")
        out[int(k)] = _blob(v, what)
    return out


def _indices(values: object, what: str) -> tuple[int, ...]:
    out = tuple(int(i) for i in values)  # type: ignore[attr-defined]
    if any(i == 0 for i in out):
        raise FrameError(DropReason.MALFORMED, f"{what} names client index 0")
    return out


# -- parsing bytes ------------------------------------------------------------------------------


def parse_client_frame(data: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> pb.ClientFrame:
    """Decode one client frame; raises :class:`FrameError` when oversized or malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError(DropReason.MALFORMED, "frame is not bytes")
    if len(data) > max_bytes:
        raise FrameError(DropReason.OVERSIZED, f"frame of {len(data)} bytes > {max_bytes}")
    frame = pb.ClientFrame()
    try:
        frame.ParseFromString(bytes(data))
    except (DecodeError, ValueError, RuntimeError):
        raise FrameError(DropReason.MALFORMED, "frame does not decode as ClientFrame") from None
    if frame.WhichOneof("body") is None:
        raise FrameError(DropReason.MALFORMED, "frame has no body")
    return frame


def parse_server_frame(data: bytes) -> pb.ServerFrame:
    """Decode one server frame; raises :class:`FrameError` when malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError(DropReason.MALFORMED, "frame is not bytes")
    frame = pb.ServerFrame()
    try:
        frame.ParseFromString(bytes(data))
    except (DecodeError, ValueError, RuntimeError):
        raise FrameError(DropReason.MALFORMED, "frame does not decode as ServerFrame") from None
    if frame.WhichOneof("body") is None:
        raise FrameError(DropReason.MALFORMED, "frame has no body")
    return frame


# -- client messages ----------------------------------------------------------------------------


def _keys_pb(keys: PublicKeys) -> pb.PublicKeys:
    return pb.PublicKeys(
        enc_public=keys.enc_public,
        mask_public=keys.mask_public,
        signature=keys.signature,
        commitment=keys.commitment,
    )


def _keys(value: pb.PublicKeys) -> PublicKeys:
    return PublicKeys(
        _blob(value.enc_public, "public key"),
        _blob(value.mask_public, "public key"),
        _blob(value.signature, "signature"),
        _blob(value.commitment, "commitment"),
    )


def client_frame(msg: ClientMessage) -> pb.ClientFrame:
    """The frame for a client message other than :class:`MaskedInput` (see
    :func:`masked_input_frames`)."""
    match msg:
        case AdvertiseKeys():
            return pb.ClientFrame(
                advertise_keys=pb.AdvertiseKeys(
                    session_id=msg.session_id, sender=msg.sender, keys=_keys_pb(msg.keys)
                )
            )
        case RevealNonce():
            return pb.ClientFrame(
                reveal_nonce=pb.RevealNonce(
                    session_id=msg.session_id, sender=msg.sender, nonce=msg.nonce
                )
            )
        case EncryptedShares():
            return pb.ClientFrame(
                encrypted_shares=pb.EncryptedShares(
                    session_id=msg.session_id, sender=msg.sender, ciphertexts=msg.ciphertexts
                )
            )
        case ConsistencySignature():
            return pb.ClientFrame(
                consistency_signature=pb.ConsistencySignature(
                    session_id=msg.session_id, sender=msg.sender, signature=msg.signature
                )
            )
        case UnmaskResponse():
            return pb.ClientFrame(
                unmask_response=pb.UnmaskResponse(
                    session_id=msg.session_id,
                    sender=msg.sender,
                    self_mask_shares=msg.self_mask_shares,
                    key_shares=msg.key_shares,
                )
            )
        case Abort():
            return pb.ClientFrame(
                abort=pb.Abort(
                    session_id=msg.session_id,
                    sender=msg.sender,
                    reason=_text(msg.reason),
                    detail=_text(msg.detail),
                )
            )
    raise TypeError(f"no single frame for {type(msg).__name__}")


def _built(build: Callable[[_F], _M], frame: _F) -> _M:
    """``build(frame)``, with a message that refused its fields turned into a FrameError (the
    message's text names the field, never its bytes)."""
    try:
        return build(frame)
    except FrameError:
        raise
    except MalformedMessageError as exc:
        raise FrameError(DropReason.MALFORMED, str(exc)) from None


def client_message(frame: pb.ClientFrame) -> ClientMessage:
    """The protocol message in a client frame (not Hello, not a masked-input chunk).

    Raises :class:`FrameError` (a :class:`~secagg.errors.MalformedMessageError`) for anything
    wrong in the frame's fields.
    """
    return _built(_client_message, frame)


def _client_message(frame: pb.ClientFrame) -> ClientMessage:
    kind = frame.WhichOneof("body")
    if kind == "advertise_keys":
        m = frame.advertise_keys
        if not m.HasField("keys"):
            raise FrameError(DropReason.MALFORMED, "AdvertiseKeys without keys")
        return AdvertiseKeys(_sid(m.session_id), m.sender, _keys(m.keys))
    if kind == "reveal_nonce":
        r = frame.reveal_nonce
        return RevealNonce(_sid(r.session_id), r.sender, _blob(r.nonce, "nonce"))
    if kind == "encrypted_shares":
        e = frame.encrypted_shares
        return EncryptedShares(
            _sid(e.session_id), e.sender, _index_map(e.ciphertexts, "ciphertexts")
        )
    if kind == "consistency_signature":
        c = frame.consistency_signature
        return ConsistencySignature(_sid(c.session_id), c.sender, _blob(c.signature, "signature"))
    if kind == "unmask_response":
        u = frame.unmask_response
        return UnmaskResponse(
            _sid(u.session_id),
            u.sender,
            _index_map(u.self_mask_shares, "self-mask shares"),
            _index_map(u.key_shares, "key shares"),
        )
    if kind == "abort":
        a = frame.abort
        return Abort(
            bytes(a.session_id[:SESSION_ID_BYTES]), a.sender, _text(a.reason), _text(a.detail)
        )
    raise FrameError(DropReason.WRONG_ROUND, f"unexpected {kind} frame")


# -- server messages ----------------------------------------------------------------------------


def server_frame(msg: ServerMessage) -> pb.ServerFrame:
    """The frame for a server message."""
    match msg:
        case CommitmentsBroadcast():
            return pb.ServerFrame(
                commitments_broadcast=pb.CommitmentsBroadcast(
                    session_id=msg.session_id, commitments=msg.commitments
                )
            )
        case KeysBroadcast():
            return pb.ServerFrame(
                keys_broadcast=pb.KeysBroadcast(
                    session_id=msg.session_id,
                    keys={i: _keys_pb(k) for i, k in msg.keys.items()},
                    nonces=msg.nonces,
                )
            )
        case SharesDelivery():
            return pb.ServerFrame(
                shares_delivery=pb.SharesDelivery(
                    session_id=msg.session_id, ciphertexts=msg.ciphertexts
                )
            )
        case ConsistencyRequest():
            return pb.ServerFrame(
                consistency_request=pb.ConsistencyRequest(
                    session_id=msg.session_id, survivors=msg.survivors
                )
            )
        case UnmaskRequest():
            return pb.ServerFrame(
                unmask_request=pb.UnmaskRequest(
                    session_id=msg.session_id, survivors=msg.survivors, signatures=msg.signatures
                )
            )
        case RoundComplete():
            return pb.ServerFrame(
                round_complete=pb.RoundComplete(session_id=msg.session_id, included=msg.included)
            )
        case Abort():
            return pb.ServerFrame(
                abort=pb.Abort(
                    session_id=msg.session_id,
                    sender=msg.sender,
                    reason=_text(msg.reason),
                    detail=_text(msg.detail),
                )
            )
    raise TypeError(f"not a server message: {type(msg).__name__}")


def server_message(frame: pb.ServerFrame) -> ServerMessage:
    """The protocol message in a server frame (not Welcome or Reject).

    Raises :class:`FrameError` (a :class:`~secagg.errors.MalformedMessageError`) for anything
    wrong in the frame's fields.
    """
    return _built(_server_message, frame)


def _server_message(frame: pb.ServerFrame) -> ServerMessage:
    kind = frame.WhichOneof("body")
    if kind == "commitments_broadcast":
        cb = frame.commitments_broadcast
        return CommitmentsBroadcast(_sid(cb.session_id), _index_map(cb.commitments, "commitments"))
    if kind == "keys_broadcast":
        k = frame.keys_broadcast
        return KeysBroadcast(
            _sid(k.session_id),
            {int(i): _keys(v) for i, v in k.keys.items()},
            _index_map(k.nonces, "nonces"),
        )
    if kind == "shares_delivery":
        s = frame.shares_delivery
        return SharesDelivery(_sid(s.session_id), _index_map(s.ciphertexts, "ciphertexts"))
    if kind == "consistency_request":
        c = frame.consistency_request
        return ConsistencyRequest(_sid(c.session_id), _indices(c.survivors, "survivors"))
    if kind == "unmask_request":
        u = frame.unmask_request
        return UnmaskRequest(
            _sid(u.session_id),
            _indices(u.survivors, "survivors"),
            _index_map(u.signatures, "signatures"),
        )
    if kind == "round_complete":
        r = frame.round_complete
        return RoundComplete(_sid(r.session_id), _indices(r.included, "included"))
    if kind == "abort":
        a = frame.abort
        return Abort(
            bytes(a.session_id[:SESSION_ID_BYTES]), a.sender, _text(a.reason), _text(a.detail)
        )
    raise FrameError(DropReason.MALFORMED, f"unexpected {kind} frame")
