"""Node replies to a :class:`~secagg.flower.grid.SecAggGrid` step, decoded into session input.

Each reply's secagg record holds client frames; a masked input arrives in chunks and is
reassembled. An error reply, a missing record or a bad frame drops the node with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flwr.app import Message

from secagg.errors import MalformedMessageError, TransportError
from secagg.flower.wire import parse_frames, secagg_record
from secagg.protocol.server.session import ServerSession
from secagg.reasons import DropReason
from secagg.transport.codec import (
    FrameError,
    VectorAssembler,
    client_message,
    parse_client_frame,
)

__all__ = ["feed_replies"]


def feed_replies(
    session: ServerSession,
    replies: Iterable[Message],
    index_of: dict[int, int],
    asked: set[int],
) -> None:
    """Hand each node's reply frames to the session; error replies and bad frames drop it."""
    for reply in replies:
        index = index_of.get(reply.metadata.src_node_id)
        if index is None or index not in asked:
            continue
        asked.discard(index)  # one reply per node and step
        if reply.has_error():
            session.drop(index, DropReason.NODE_ERROR, f"error reply (code {reply.error.code})")
            continue
        try:
            record = secagg_record(reply.content)
            if record is None:
                raise MalformedMessageError(
                    "the reply carries no secagg record (does the node's ClientApp use "
                    "secagg_mod?); its content was discarded"
                )
            for message in _client_messages(session, index, parse_frames(record)):
                session.receive(message)
        except FrameError as exc:
            session.drop(index, exc.reason, exc.detail)
        except (MalformedMessageError, TransportError) as exc:
            session.drop(index, DropReason.MALFORMED, str(exc))


def _client_messages(session: ServerSession, index: int, frames: list[bytes]) -> list[Any]:
    messages: list[Any] = []
    assembler: VectorAssembler | None = None
    for data in frames:
        frame = parse_client_frame(data)
        if frame.WhichOneof("body") == "masked_input":
            if assembler is None:
                config = session.config
                assembler = VectorAssembler(config.session_id, index, config.dim, config.bits)
            whole = assembler.add(frame.masked_input)
            if whole is not None:
                messages.append(whole)
        else:
            messages.append(client_message(frame))
    if assembler is not None and assembler.filled < assembler.dim:
        raise FrameError(DropReason.WRONG_LENGTH, "the masked input's chunks stop short")
    return messages
