"""Whatever bytes or field values arrive, decoding raises MalformedMessageError and nothing else.

Random bytes, random but well-typed protobuf frames, bit-flipped valid frames and random masked
input chunks: each decodes to a valid message or raises FrameError, which is the
MalformedMessageError sessions and servers catch to blame the peer.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.crypto.shamir import SHARE_BYTES
from secagg.errors import MalformedMessageError
from secagg.protocol.messages import (
    CIPHERTEXT_BYTES,
    Abort,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
    EncryptedShares,
    KeysBroadcast,
    MaskedInput,
    PublicKeys,
    RevealNonce,
    RoundComplete,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.reasons import DropReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import (
    FrameError,
    VectorAssembler,
    client_frame,
    client_message,
    masked_input_frames,
    parse_client_frame,
    parse_server_frame,
    server_frame,
    server_message,
)

SID = bytes(range(32))
KEYS = PublicKeys(os.urandom(32), os.urandom(32), os.urandom(64), os.urandom(32))
_NOT_PROTOCOL = ("hello", "masked_input", "welcome", "reject", "challenge", "task_chunk")


def _decode_client(data: bytes) -> object:
    frame = parse_client_frame(data)
    if frame.WhichOneof("body") in _NOT_PROTOCOL:
        return frame
    return client_message(frame)


def _decode_server(data: bytes) -> object:
    frame = parse_server_frame(data)
    if frame.WhichOneof("body") in _NOT_PROTOCOL:
        return frame
    return server_message(frame)


def _only_malformed(decode: Callable[[bytes], object], data: bytes) -> None:
    error: MalformedMessageError | None = None
    try:
        decode(data)
    except MalformedMessageError as exc:  # anything else propagates and fails the test
        error = exc
    if error is not None:
        assert isinstance(error, FrameError)
        assert isinstance(error.reason, DropReason)


def test_frame_errors_are_malformed_message_errors() -> None:
    err = FrameError(DropReason.OVERSIZED, "frame of 9 bytes > 8")
    assert isinstance(err, MalformedMessageError)
    assert err.reason is DropReason.OVERSIZED


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_malformed(data: bytes) -> None:
    _only_malformed(_decode_client, data)
    _only_malformed(_decode_server, data)


VALID_CLIENT = [
    AdvertiseKeys(SID, 3, KEYS),
    RevealNonce(SID, 3, os.urandom(32)),
    EncryptedShares(SID, 3, {1: os.urandom(CIPHERTEXT_BYTES), 2: os.urandom(CIPHERTEXT_BYTES)}),
    ConsistencySignature(SID, 3, os.urandom(64)),
    UnmaskResponse(SID, 3, {1: os.urandom(SHARE_BYTES)}, {2: os.urandom(SHARE_BYTES)}),
    Abort(SID, 3, "too-few-neighbours", "only 1"),
]
VALID_SERVER = [
    KeysBroadcast(SID, {1: KEYS, 4: KEYS}, {1: os.urandom(32)}),
    SharesDelivery(SID, {2: os.urandom(CIPHERTEXT_BYTES)}),
    ConsistencyRequest(SID, (1, 2, 5)),
    UnmaskRequest(SID, (1, 2), {1: os.urandom(64)}),
    RoundComplete(SID, (1, 3)),
]
CLIENT_BYTES = [client_frame(m).SerializeToString() for m in VALID_CLIENT]
SERVER_BYTES = [server_frame(m).SerializeToString() for m in VALID_SERVER]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_valid_frames_only_raise_malformed(data: st.DataObject) -> None:
    """Flip, cut or insert bytes of a valid frame of every kind."""
    for pool, decode in ((CLIENT_BYTES, _decode_client), (SERVER_BYTES, _decode_server)):
        raw = bytearray(data.draw(st.sampled_from(pool)))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(raw) - 1))
            action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
            if action == "flip":
                raw[at] ^= 1 << data.draw(st.integers(0, 7))
            elif action == "cut":
                del raw[at:]
            else:
                raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
            if not raw:
                break
        _only_malformed(decode, bytes(raw))


_BLOB = st.binary(max_size=120)
_INDEX = st.integers(0, 2**32 - 1)
_MAP = st.dictionaries(_INDEX, _BLOB, max_size=4)
_INDICES = st.lists(_INDEX, max_size=5)


@st.composite
def _client_frames(draw: st.DrawFn) -> pb.ClientFrame:
    sid, sender = draw(_BLOB), draw(_INDEX)
    kind = draw(st.sampled_from(["keys", "reveal", "shares", "signature", "unmask", "abort"]))
    if kind == "keys":
        keys = pb.PublicKeys(
            enc_public=draw(_BLOB),
            mask_public=draw(_BLOB),
            signature=draw(_BLOB),
            commitment=draw(_BLOB),
        )
        return pb.ClientFrame(
            advertise_keys=pb.AdvertiseKeys(session_id=sid, sender=sender, keys=keys)
        )
    if kind == "reveal":
        body = pb.RevealNonce(session_id=sid, sender=sender, nonce=draw(_BLOB))
        return pb.ClientFrame(reveal_nonce=body)
    if kind == "shares":
        body = pb.EncryptedShares(session_id=sid, sender=sender, ciphertexts=draw(_MAP))
        return pb.ClientFrame(encrypted_shares=body)
    if kind == "signature":
        body = pb.ConsistencySignature(session_id=sid, sender=sender, signature=draw(_BLOB))
        return pb.ClientFrame(consistency_signature=body)
    if kind == "unmask":
        body = pb.UnmaskResponse(
            session_id=sid, sender=sender, self_mask_shares=draw(_MAP), key_shares=draw(_MAP)
        )
        return pb.ClientFrame(unmask_response=body)
    text = st.text(max_size=700)
    body = pb.Abort(session_id=sid, sender=sender, reason=draw(text), detail=draw(text))
    return pb.ClientFrame(abort=body)


@st.composite
def _server_frames(draw: st.DrawFn) -> pb.ServerFrame:
    sid = draw(_BLOB)
    kind = draw(st.sampled_from(["commitments", "keys", "shares", "consistency", "unmask", "done"]))
    if kind == "commitments":
        body = pb.CommitmentsBroadcast(session_id=sid, commitments=draw(_MAP))
        return pb.ServerFrame(commitments_broadcast=body)
    if kind == "keys":
        keys = {
            i: pb.PublicKeys(enc_public=draw(_BLOB), mask_public=draw(_BLOB))
            for i in draw(_INDICES)
        }
        body = pb.KeysBroadcast(session_id=sid, keys=keys, nonces=draw(_MAP))
        return pb.ServerFrame(keys_broadcast=body)
    if kind == "shares":
        body = pb.SharesDelivery(session_id=sid, ciphertexts=draw(_MAP))
        return pb.ServerFrame(shares_delivery=body)
    if kind == "consistency":
        body = pb.ConsistencyRequest(session_id=sid, survivors=draw(_INDICES))
        return pb.ServerFrame(consistency_request=body)
    if kind == "unmask":
        body = pb.UnmaskRequest(session_id=sid, survivors=draw(_INDICES), signatures=draw(_MAP))
        return pb.ServerFrame(unmask_request=body)
    return pb.ServerFrame(round_complete=pb.RoundComplete(session_id=sid, included=draw(_INDICES)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_client_frames(), _server_frames())
def test_well_typed_frames_with_any_field_values_only_raise_malformed(
    client: pb.ClientFrame, server: pb.ServerFrame
) -> None:
    """Right protobuf types, arbitrary sizes and indices: a valid message or FrameError."""
    _only_malformed(_decode_client, client.SerializeToString())
    _only_malformed(_decode_server, server.SerializeToString())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "session_id": st.sampled_from([SID, SID[:5], b""]),
                "sender": st.sampled_from([2, 3, 0]),
                "dim": st.sampled_from([8, 7, 0, 2**63]),
                "word_bytes": st.sampled_from([4, 8, 0, 3]),
                "offset": st.integers(0, 10),
                "words": st.binary(max_size=40),
            }
        ),
        min_size=1,
        max_size=4,
    )
)
def test_random_masked_input_chunks_only_raise_malformed(chunks: list[dict[str, object]]) -> None:
    assembler = VectorAssembler(SID, 2, 8, 32)
    for fields in chunks:
        chunk = pb.MaskedInputChunk(**fields)  # type: ignore[arg-type]
        try:
            out = assembler.add(
                parse_client_frame(
                    pb.ClientFrame(masked_input=chunk).SerializeToString()
                ).masked_input
            )
        except MalformedMessageError:
            return
        if out is not None:
            assert isinstance(out, MaskedInput)
            assert out.vector.shape == (8,)
            return


def test_a_valid_masked_input_survives_the_assembler() -> None:
    msg = MaskedInput(SID, 2, np.arange(8, dtype=np.uint32))
    assembler = VectorAssembler(SID, 2, 8, 32)
    out = None
    for frame in masked_input_frames(msg, 12):
        out = assembler.add(frame.masked_input)
    assert out is not None
    assert np.array_equal(out.vector, msg.vector)


def test_a_message_that_refuses_its_fields_becomes_a_frame_error() -> None:
    """Sizes the codec lets through but the message refuses: FrameError naming the field."""
    short = pb.ClientFrame(reveal_nonce=pb.RevealNonce(session_id=SID, sender=1, nonce=b"n" * 5))
    with pytest.raises(FrameError) as err:
        client_message(short)
    assert err.value.reason is DropReason.MALFORMED
    assert "nonce" in err.value.detail
