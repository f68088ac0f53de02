"""The wire codec: every message round-trips; malformed frames raise FrameError with a reason."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.shamir import SHARE_BYTES
from secagg.protocol.messages import (
    CIPHERTEXT_BYTES,
    Abort,
    AdvertiseKeys,
    CommitmentsBroadcast,
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
CT = CIPHERTEXT_BYTES
KEYS = PublicKeys(os.urandom(32), os.urandom(32), b"")
SIGNED = PublicKeys(os.urandom(32), os.urandom(32), os.urandom(64), os.urandom(32))


@pytest.mark.parametrize(
    "msg",
    [
        AdvertiseKeys(SID, 3, KEYS),
        AdvertiseKeys(SID, 3, SIGNED),
        RevealNonce(SID, 3, os.urandom(32)),
        EncryptedShares(SID, 3, {1: b"a" * CT, 2: b"b" * CT}),
        ConsistencySignature(SID, 3, os.urandom(64)),
        UnmaskResponse(SID, 3, {1: b"s" * SHARE_BYTES}, {2: b"k" * SHARE_BYTES}),
        Abort(SID, 3, "too-few-neighbours", "only 1"),
    ],
)
def test_client_messages_round_trip(msg: object) -> None:
    data = client_frame(msg).SerializeToString()  # type: ignore[arg-type]
    assert client_message(parse_client_frame(data)) == msg


@pytest.mark.parametrize(
    "msg",
    [
        KeysBroadcast(SID, {1: KEYS, 4: KEYS}),
        KeysBroadcast(SID, {1: SIGNED}, {1: os.urandom(32), 2: os.urandom(32)}),
        CommitmentsBroadcast(SID, {1: os.urandom(32), 7: os.urandom(32)}),
        SharesDelivery(SID, {2: b"c" * CT}),
        ConsistencyRequest(SID, (1, 2, 5)),
        UnmaskRequest(SID, (1, 2), {1: b"x" * 64}),
        RoundComplete(SID, (1, 3)),
        Abort(SID, 0, "too-few-clients", ""),
    ],
)
def test_server_messages_round_trip(msg: object) -> None:
    data = server_frame(msg).SerializeToString()  # type: ignore[arg-type]
    assert server_message(parse_server_frame(data)) == msg


@pytest.mark.parametrize("bits", [16, 32, 40, 64])
def test_masked_input_chunks_reassemble(bits: int) -> None:
    dtype = np.uint32 if bits <= 32 else np.uint64
    vector = np.random.default_rng(bits).integers(0, 1 << bits, 10_001, dtype=np.uint64)
    msg = MaskedInput(SID, 2, vector.astype(dtype))
    assembler = VectorAssembler(SID, 2, 10_001, bits)
    frames = list(masked_input_frames(msg, 4096))
    assert len(frames) > 5
    out = None
    for f in frames:
        out = assembler.add(parse_client_frame(f.SerializeToString()).masked_input)
    assert out is not None
    assert np.array_equal(out.vector, msg.vector)


def test_assembler_rejects_gaps_wrong_dim_and_sender() -> None:
    msg = MaskedInput(SID, 2, np.arange(100, dtype=np.uint32))
    frames = [f.masked_input for f in masked_input_frames(msg, 40)]
    a = VectorAssembler(SID, 2, 100, 32)
    a.add(frames[0])
    with pytest.raises(FrameError) as gap:
        a.add(frames[2])
    assert gap.value.reason is DropReason.MALFORMED
    with pytest.raises(FrameError) as dim:
        VectorAssembler(SID, 2, 99, 32).add(frames[0])
    assert dim.value.reason is DropReason.WRONG_LENGTH
    with pytest.raises(FrameError) as sender:
        VectorAssembler(SID, 3, 100, 32).add(frames[0])
    assert sender.value.reason is DropReason.MALFORMED
    with pytest.raises(FrameError) as width:
        VectorAssembler(SID, 2, 100, 40).add(frames[0])
    assert width.value.reason is DropReason.MALFORMED


def test_oversized_and_empty_frames() -> None:
    with pytest.raises(FrameError) as big:
        parse_client_frame(b"\x00" * 2000, max_bytes=1000)
    assert big.value.reason is DropReason.OVERSIZED
    with pytest.raises(FrameError) as empty:
        parse_client_frame(pb.ClientFrame().SerializeToString())
    assert empty.value.reason is DropReason.MALFORMED
    bad_sid = pb.ClientFrame(
        consistency_signature=pb.ConsistencySignature(session_id=b"short", sender=1)
    )
    with pytest.raises(FrameError):
        client_message(bad_sid)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_escapes_as_another_error(data: bytes) -> None:
    for parse, convert in (
        (parse_client_frame, client_message),
        (parse_server_frame, server_message),
    ):
        try:
            frame = parse(data)
            if frame.WhichOneof("body") not in ("hello", "masked_input", "welcome", "reject"):
                convert(frame)
        except FrameError:
            pass
