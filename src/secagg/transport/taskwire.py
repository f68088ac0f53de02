"""The round's task on the wire: TaskChunk frames after Welcome, and their reassembly.

The server splits the task into chunks no larger than its chunk size; the client takes them in
order and checks every field (session id, offset, total length), so a server can neither make
it allocate more than ``Welcome.task_bytes`` (itself bounded by the client) nor splice chunks
of another round in.
"""

from __future__ import annotations

from secagg.reasons import DropReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.codec import FrameError

__all__ = ["TaskAssembler", "task_frames"]


def task_frames(session_id: bytes, task: bytes, chunk_bytes: int) -> list[bytes]:
    """The serialized ``TaskChunk`` frames carrying ``task`` (none for an empty task)."""
    step = max(1, chunk_bytes)
    return [
        pb.ServerFrame(
            task_chunk=pb.TaskChunk(
                session_id=session_id, offset=offset, data=task[offset : offset + step]
            )
        ).SerializeToString()
        for offset in range(0, len(task), step)
    ]


class TaskAssembler:
    """Collects a task of ``total`` bytes from TaskChunk frames of session ``session_id``."""

    def __init__(self, session_id: bytes, total: int, limit: int) -> None:
        if total > limit:
            raise FrameError(
                DropReason.OVERSIZED,
                f"the round's task has {total} bytes; this client accepts at most {limit}",
            )
        self.session_id = session_id
        self.total = total
        self._buf = bytearray()

    @property
    def complete(self) -> bool:
        """Whether every byte of the task arrived."""
        return len(self._buf) == self.total

    def add(self, chunk: pb.TaskChunk) -> None:
        """Append one chunk; raises :class:`FrameError` for a chunk that does not fit."""
        if bytes(chunk.session_id) != self.session_id:
            raise FrameError(DropReason.WRONG_SESSION, "task chunk of another session")
        if chunk.offset != len(self._buf):
            raise FrameError(
                DropReason.MALFORMED,
                f"task chunk at offset {chunk.offset}; expected {len(self._buf)}",
            )
        if not chunk.data or len(self._buf) + len(chunk.data) > self.total:
            raise FrameError(
                DropReason.MALFORMED,
                f"task chunk of {len(chunk.data)} bytes does not fit the announced {self.total}",
            )
        self._buf += chunk.data

    def data(self) -> bytes:
        """The whole task (only once :attr:`complete`)."""
        assert self.complete
        return bytes(self._buf)
