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

from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from secagg.crypto.ring import word_dtype
from secagg.errors import MalformedMessageError, TransportError
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
    MaskedInput,
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


class FrameError(TransportError, MalformedMessageError):
    """A peer's frame is malformed, oversized or inconsistent; ``reason`` is a stable code."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def _text(value: str) -> str:
    return value[:MAX_TEXT]


def _blob(value: bytes, what: str) -> bytes:
    if len(value) > _MAX_BLOB:
        raise FrameError(DropReason.OVERSIZED, f"{what} is {len(value)} bytes")
    return bytes(value)


def _sid(value: bytes) -> bytes:
    if len(value) != SESSION_ID_BYTES:
        raise FrameError(DropReason.MALFORMED, f"session_id must be {SESSION_ID_BYTES} bytes")
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


def masked_input_frames(msg: MaskedInput, chunk_bytes: int) -> Iterator[pb.ClientFrame]:
    """The frames carrying a masked input: little-endian words, ``chunk_bytes`` at most each."""
    vector = msg.vector
    word_bytes = vector.dtype.itemsize
    little = vector.astype(vector.dtype.newbyteorder("<"), copy=False)
    step = max(1, chunk_bytes // word_bytes)
    dim = int(vector.shape[0])
    for offset in range(0, dim, step):
        yield pb.ClientFrame(
            masked_input=pb.MaskedInputChunk(
                session_id=msg.session_id,
                sender=msg.sender,
                dim=dim,
                word_bytes=word_bytes,
                offset=offset,
                words=little[offset : offset + step].tobytes(),
            )
        )


def _as_frame_error(exc: MalformedMessageError) -> FrameError:
    """A message that refused its fields (its text names the field, never its bytes)."""
    return exc if isinstance(exc, FrameError) else FrameError(DropReason.MALFORMED, str(exc))


def client_message(frame: pb.ClientFrame) -> ClientMessage:
    """The protocol message in a client frame (not Hello, not a masked-input chunk).

    Raises :class:`FrameError` (a :class:`~secagg.errors.MalformedMessageError`) for anything
    wrong in the frame's fields.
    """
    try:
        return _client_message(frame)
    except MalformedMessageError as exc:
        raise _as_frame_error(exc) from None


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


class VectorAssembler:
    """Puts a chunked masked input back together into one array of ``dim`` ring words.

    Chunks must arrive in order without gaps or overlap, all naming the same session, sender,
    dim and word size; anything else raises :class:`FrameError`.
    """

    def __init__(self, session_id: bytes, sender: int, dim: int, bits: int) -> None:
        self.session_id = session_id
        self.sender = sender
        self.dim = dim
        self.dtype = word_dtype(bits)
        self.filled = 0
        self._vector: npt.NDArray[np.unsignedinteger] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes the assembled vector takes."""
        return self.dim * self.dtype.itemsize

    def check_first(self, chunk: pb.MaskedInputChunk) -> None:
        """Validate a first chunk's header before any memory is committed to it."""
        if chunk.dim != self.dim:
            raise FrameError(
                DropReason.WRONG_LENGTH, f"masked input has {chunk.dim} words; expected {self.dim}"
            )
        if chunk.word_bytes != self.dtype.itemsize:
            raise FrameError(
                DropReason.MALFORMED,
                f"masked input words of {chunk.word_bytes} bytes; expected {self.dtype.itemsize}",
            )
        if _sid(chunk.session_id) != self.session_id:
            raise FrameError(DropReason.WRONG_SESSION, "chunk carries another session id")
        if chunk.sender != self.sender:
            raise FrameError(DropReason.MALFORMED, "chunk sender is not this stream's client")

    def add(self, chunk: pb.MaskedInputChunk) -> MaskedInput | None:
        """Take the next chunk; returns the whole message once the last chunk arrived."""
        self.check_first(chunk)
        if chunk.offset != self.filled:
            raise FrameError(
                DropReason.MALFORMED, f"chunk at word {chunk.offset}; expected {self.filled}"
            )
        size = len(chunk.words)
        if size == 0 or size % self.dtype.itemsize:
            raise FrameError(DropReason.MALFORMED, "chunk is not a whole number of words")
        count = size // self.dtype.itemsize
        if self.filled + count > self.dim:
            raise FrameError(DropReason.WRONG_LENGTH, "chunks run past the vector's end")
        if self._vector is None:
            self._vector = np.empty(self.dim, dtype=self.dtype)
        words = np.frombuffer(chunk.words, dtype=self.dtype.newbyteorder("<"))
        self._vector[self.filled : self.filled + count] = words
        self.filled += count
        if self.filled < self.dim:
            return None
        vector, self._vector = self._vector, None
        return MaskedInput(self.session_id, self.sender, vector)


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
    try:
        return _server_message(frame)
    except MalformedMessageError as exc:
        raise _as_frame_error(exc) from None


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
