"""Checks for the fields of protocol messages (used by :mod:`secagg.protocol.messages`).

Each check raises :class:`~secagg.errors.MalformedMessageError` naming the field, what was wrong
and what was expected. Messages never echo a field's bytes: keys, shares and ciphertexts may be
secret. Only checks that hold in every round are made here (types, sizes, index ranges, order);
whether an index is in 1..n or a vector has D words depends on the round and is the session's
job. Checks are O(1) per field and O(entries) per mapping: never a Python loop over a vector.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from itertools import islice
from typing import NoReturn, cast

import numpy as np

from secagg.errors import MalformedMessageError

__all__ = [
    "MAX_INDEX",
    "MAX_TEXT",
    "SESSION_ID_BYTES",
    "check_blob",
    "check_blob_map",
    "check_index",
    "check_index_map",
    "check_indices",
    "check_session_id",
    "check_text",
    "check_vector",
]

SESSION_ID_BYTES = 32  # SHA-256 of the round config
MAX_INDEX = 2**32 - 1  # indices travel as uint32
MAX_TEXT = 512  # reason/detail strings longer than this are cut, never refused

_WORD_DTYPES = (np.dtype(np.uint32), np.dtype(np.uint64))
_INT = frozenset({int})  # exactly int: bool and NumPy integers take the slow path's checks
_BYTES = frozenset({bytes})
# The last index tuple that passed check_indices (held, so its id cannot be reused).
_last_indices: list[tuple[int, ...]] = [()]


def _fail(what: str, problem: str) -> NoReturn:
    raise MalformedMessageError(f"{what}: {problem}")


def _kind(value: object) -> str:
    return type(value).__name__


def check_index(what: str, value: object, *, minimum: int = 1) -> None:
    """An index: a Python int (not bool) in ``minimum``..2^32-1 (0 is the server)."""
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(what, f"expected an integer index, got {_kind(value)}")
    if not minimum <= value <= MAX_INDEX:
        _fail(what, f"index {value}; expected {minimum}..{MAX_INDEX}")


def check_blob(what: str, value: object, *sizes: int) -> None:
    """A bytes value whose length is one of ``sizes``."""
    if not isinstance(value, bytes):
        _fail(what, f"expected bytes, got {_kind(value)}")
    if len(value) not in sizes:
        wanted = " or ".join(str(s) for s in sizes)
        _fail(what, f"{len(value)} bytes; expected {wanted}")


def check_session_id(value: object, *, allow_short: bool = False) -> None:
    """A session id: 32 bytes (``allow_short``: at most 32, for an Abort from a confused peer)."""
    if not isinstance(value, bytes):
        _fail("session_id", f"expected bytes, got {_kind(value)}")
    if len(value) != SESSION_ID_BYTES and not (allow_short and len(value) < SESSION_ID_BYTES):
        _fail("session_id", f"{len(value)} bytes; expected {SESSION_ID_BYTES}")


def _plain_indices(values: Collection[object]) -> bool:
    """True when every value is a Python int in 1..2^32-1: one C-speed pass, no Python loop
    (the server builds n messages of O(n) indices each, so this is on the hot path)."""
    if not values:
        return True
    if not set(map(type, values)) <= _INT:
        return False
    ints = cast(Collection[int], values)  # every value's type is exactly int
    return min(ints) >= 1 and max(ints) <= MAX_INDEX


def _check_keys(what: str, value: object) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        _fail(what, f"expected a mapping of client index to value, got {_kind(value)}")
    if not _plain_indices(value.keys()):
        for index in value:  # the slow path names the first bad key
            check_index(f"{what} key", index)
    return value


def check_index_map(what: str, value: object, check_value: Callable[[str, object], None]) -> None:
    """A mapping from client indices (1..2^32-1) to values that pass ``check_value``."""
    for index, item in _check_keys(what, value).items():
        check_value(f"{what}[{index}]", item)


def check_blob_map(what: str, value: object, *sizes: int) -> None:
    """A mapping from client indices (1..2^32-1) to bytes whose lengths are among ``sizes``."""
    items = _check_keys(what, value)
    blobs = items.values()
    if blobs and not (
        set(map(type, blobs)) <= _BYTES
        and set(map(len, cast(Collection[bytes], blobs))) <= set(sizes)
    ):
        for index, item in items.items():  # the slow path names the first bad value
            check_blob(f"{what}[{index}]", item, *sizes)


def check_indices(what: str, value: object) -> None:
    """A tuple of client indices, strictly increasing (so sorted and distinct), each >= 1."""
    if value is _last_indices[0]:
        return  # a server sends one U3 to every survivor; a checked tuple of ints stays valid
    if not isinstance(value, tuple):
        _fail(what, f"expected a tuple of client indices, got {_kind(value)}")
    if not _plain_indices(value):
        for index in value:  # the slow path names the first bad entry
            check_index(f"{what} entry", index)
    if not all(map(operator.lt, value, islice(value, 1, None))):
        _fail(what, "indices out of order or repeated; expected sorted, distinct indices")
    _last_indices[0] = value


def check_vector(what: str, value: object) -> None:
    """A 1-D NumPy array of ring words (uint32 or uint64, native byte order)."""
    if not isinstance(value, np.ndarray):
        _fail(what, f"expected a NumPy array, got {_kind(value)}")
    if value.ndim != 1:
        _fail(what, f"expected a 1-D array, got {value.ndim}-D")
    if value.dtype not in _WORD_DTYPES:
        _fail(what, f"dtype {value.dtype}; expected uint32 or uint64")


def check_text(what: str, value: object) -> str:
    """A str, cut to :data:`MAX_TEXT` characters (returned)."""
    if not isinstance(value, str):
        _fail(what, f"expected str, got {_kind(value)}")
    return value[:MAX_TEXT]
