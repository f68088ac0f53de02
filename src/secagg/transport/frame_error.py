"""The codec's one error: a peer's frame is malformed, oversized or inconsistent.

It is both a :class:`~secagg.errors.TransportError` (the transport drops or aborts on it) and a
:class:`~secagg.errors.MalformedMessageError` (the error that blames a peer), and carries a
stable :class:`~secagg.reasons.DropReason`. Kept apart so the codec and the chunk assembler
share it without importing each other.
"""

from __future__ import annotations

from secagg.errors import MalformedMessageError, TransportError
from secagg.protocol.fields import SESSION_ID_BYTES
from secagg.reasons import DropReason

__all__ = ["FrameError", "session_id_field"]


class FrameError(TransportError, MalformedMessageError):
    """A peer's frame is malformed, oversized or inconsistent; ``reason`` is a stable code."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def session_id_field(value: bytes) -> bytes:
    """A frame's session id as bytes; raises :class:`FrameError` unless it is 32 bytes."""
    if len(value) != SESSION_ID_BYTES:
        raise FrameError(DropReason.MALFORMED, f"session_id must be {SESSION_ID_BYTES} bytes")
    return bytes(value)
