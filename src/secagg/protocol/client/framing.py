"""Framing of saved client sessions: big-endian integers, length-prefixed bytes, index lists
and index maps; a reader that refuses truncated and trailing data with SavedSessionError."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from secagg.errors import SavedSessionError

__all__ = ["Reader", "Writer"]

_U8, _U32, _U64 = struct.Struct(">B"), struct.Struct(">I"), struct.Struct(">Q")


class Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def u8(self, value: int) -> None:
        self.parts.append(_U8.pack(value))

    def u32(self, value: int) -> None:
        self.parts.append(_U32.pack(value))

    def u64(self, value: int) -> None:
        self.parts.append(_U64.pack(value))

    def blob(self, data: bytes) -> None:
        self.u32(len(data))
        self.parts.append(bytes(data))

    def ints(self, values: Iterable[int]) -> None:
        items = list(values)
        self.u32(len(items))
        self.parts.extend(_U32.pack(v) for v in items)

    def blobs(self, values: Mapping[int, bytes]) -> None:
        self.u32(len(values))
        for k in sorted(values):
            self.u32(k)
            self.blob(values[k])


class Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise SavedSessionError(
                f"saved session is truncated: needed {size} bytes at offset {self._at}, "
                f"{len(self._data) - self._at} left"
            )
        out = self._data[self._at : end]
        self._at = end
        return out

    def u8(self) -> int:
        value: int = _U8.unpack(self.take(1))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(8))[0]
        return value

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise SavedSessionError(f"saved session has a flag byte {value}, expected 0 or 1")
        return value == 1

    def blob(self, size: int | None = None) -> bytes:
        data = self.take(self.u32())
        if size is not None and len(data) != size:
            raise SavedSessionError(f"saved session has a {len(data)}-byte field, expected {size}")
        return data

    def ints(self) -> tuple[int, ...]:
        return tuple(self.u32() for _ in range(self.u32()))

    def blobs(self, size: int | None = None) -> dict[int, bytes]:
        return {self.u32(): self.blob(size) for _ in range(self.u32())}

    def end(self) -> None:
        if self._at != len(self._data):
            raise SavedSessionError(
                f"saved session has {len(self._data) - self._at} trailing bytes after its end"
            )
