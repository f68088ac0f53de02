"""``context_digest``: a SHA-256 of what the server handed the clients for a round.

In malicious mode the round config carries ``context_digest``; each client computes the digest
itself from what it actually received (say, the global model) and passes it to its session as
``expected_context_digest``. A client whose own digest differs aborts, and signatures over
different digests never add up to the threshold, so a server that gives different clients
different models cannot finish the round (Pasquini et al., CCS 2022).

The encoding is canonical: the same values give the same digest on every platform.

- ``bytes``/``bytearray``/``memoryview``: tag ``B``, length, the bytes.
- ``str``: tag ``S``, length, UTF-8.
- arrays (NumPy, anything with ``__array__``, PyTorch tensors), Python ints, floats and bools
  (as NumPy scalars): tag ``A``, dtype as a little-endian type string such as ``<f4``, number of
  dimensions, each dimension, then the elements in C order, little-endian.
- mappings: tag ``M``, count, then for each key in sorted order: the key (must be ``str``) as
  a string and its value.
- lists and tuples: tag ``L``, count, each item.

Lengths and counts are unsigned 64-bit big-endian. The hash input starts with the domain label
``secagg/v1/context``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from secagg.errors import ConfigError

__all__ = ["CONTEXT_DIGEST_BYTES", "context_digest", "context_file_digest"]

CONTEXT_DIGEST_BYTES = 32
_LABEL = b"secagg/v1/context"
_U64 = struct.Struct(">Q")
_MAX_DEPTH = 64
_FILE_CHUNK = 1 << 20


def context_digest(obj: Any) -> bytes:
    """SHA-256 over the canonical encoding of ``obj`` (bytes, arrays, dicts/lists of them).

    Pass the result as ``context_digest`` when creating the :class:`~secagg.RoundConfig` (the
    server) and as ``expected_context_digest`` to the client session (each client, computed
    from what it received).
    """
    h = hashlib.sha256(_LABEL)
    _feed(h, obj, 0)
    return h.digest()


def context_file_digest(path: str | os.PathLike[str]) -> bytes:
    """:func:`context_digest` of a file's bytes (say, the model file), read in chunks.

    Equal to ``context_digest(Path(path).read_bytes())``; the server's ``--context FILE`` and
    the clients' ``--context FILE`` both use it. Raises :class:`ConfigError` naming the file when
    it cannot be read.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            h = hashlib.sha256(_LABEL)
            h.update(b"B" + _U64.pack(size))
            read = 0
            while chunk := fh.read(_FILE_CHUNK):
                h.update(chunk)
                read += len(chunk)
    except OSError as exc:
        raise ConfigError(f"cannot read context file {p}: {exc.strerror or exc}") from None
    if read != size:
        raise ConfigError(f"context file {p} changed while it was read")
    return h.digest()


def _feed(h: Any, obj: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ConfigError("context object is nested too deeply")
    if isinstance(obj, bytes | bytearray | memoryview):
        data = bytes(obj)
        h.update(b"B" + _U64.pack(len(data)))
        h.update(data)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        h.update(b"S" + _U64.pack(len(data)))
        h.update(data)
    elif isinstance(obj, Mapping):
        keys = list(obj)
        if not all(isinstance(k, str) for k in keys):
            raise ConfigError("context mappings must have string keys")
        h.update(b"M" + _U64.pack(len(keys)))
        for key in sorted(keys):
            _feed(h, key, depth + 1)
            _feed(h, obj[key], depth + 1)
    elif isinstance(obj, list | tuple):
        h.update(b"L" + _U64.pack(len(obj)))
        for item in obj:
            _feed(h, item, depth + 1)
    else:
        _feed_array(h, _as_array(obj))


def _as_array(obj: Any) -> np.ndarray[Any, Any]:
    if obj is None:
        raise ConfigError("context objects cannot contain None")
    detach = getattr(obj, "detach", None)
    if callable(detach):  # a PyTorch tensor: copy to host memory first
        obj = detach().cpu().numpy()
    if not isinstance(obj, np.ndarray | np.generic | int | float) and not hasattr(obj, "__array__"):
        raise ConfigError(
            f"cannot digest a {type(obj).__name__}: use bytes, str, arrays, or dicts/lists of them"
        )
    arr = np.asarray(obj)
    if arr.dtype.kind not in "biufc":
        raise ConfigError(f"cannot digest an array of dtype {arr.dtype}")
    return arr


def _feed_array(h: Any, arr: np.ndarray[Any, Any]) -> None:
    canonical = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
    type_str = canonical.dtype.str.encode("ascii")
    h.update(b"A" + _U64.pack(len(type_str)) + type_str + _U64.pack(canonical.ndim))
    for dim in canonical.shape:
        h.update(_U64.pack(dim))
    h.update(canonical.reshape(-1).view(np.uint8).data)
