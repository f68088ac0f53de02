"""Masked inputs on the wire: split into chunks of little-endian words and put back together.

A masked input is the one message too large for a frame; :func:`masked_input_frames` cuts it
into chunks no larger than the server asks for, and :class:`VectorAssembler` writes the chunks
of one client straight into one preallocated array, checking every header first.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from secagg.crypto.ring import word_dtype
from secagg.protocol.messages import MaskedInput
from secagg.reasons import DropReason
from secagg.transport import secagg_pb2 as pb
from secagg.transport.frame_error import FrameError
from secagg.transport.frame_error import session_id_field as _sid

__all__ = ["VectorAssembler", "masked_input_frames"]


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
