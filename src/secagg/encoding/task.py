"""A round's task: the bytes a server hands every client of a round (a model, a query, ...).

The server streams the task right after Welcome and puts its :func:`~secagg.context_digest`
into the round config's ``context_digest``; each client recomputes the digest from the bytes it
received, so in malicious mode the consistency round proves everyone got the same task.

A pytree of arrays travels as :func:`pack_arrays` bytes: an uncompressed NumPy ``.npz`` archive
(a ZIP of ``.npy`` files) whose member names are the leaves' paths, nested dict keys joined by
``/`` (keys must be non-empty strings without ``/``). Leaves are NumPy arrays or anything
``numpy.asarray`` turns into a numeric array (PyTorch tensors are copied to host memory first).
:func:`unpack_arrays` reads it back with ``allow_pickle=False``: no object arrays, no code.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.encoding.context import context_digest
from secagg.errors import ConfigError

__all__ = ["Task", "pack_arrays", "task_bytes", "unpack_arrays"]

_SEP = "/"


def pack_arrays(tree: Mapping[str, Any]) -> bytes:
    """Serialize a (nested) dict of numeric arrays as ``.npz`` bytes (see the module doc).

    The same tree always gives the same bytes (sorted paths, fixed ZIP timestamps), so
    the digest does not depend on when or where it was packed.
    """
    flat: dict[str, npt.NDArray[Any]] = {}
    _flatten(tree, "", flat, 0)
    if not flat:
        raise ConfigError("a task tree needs at least one array")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(flat):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, flat[path], allow_pickle=False)
            info = zipfile.ZipInfo(path + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue())
    return out.getvalue()


def unpack_arrays(data: bytes) -> dict[str, Any]:
    """The nested dict of arrays that :func:`pack_arrays` wrote (never unpickles anything).

    Raises :class:`ConfigError` when ``data`` is not such an archive.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            flat = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"the task is not an array archive (pack_arrays): {exc}") from None
    tree: dict[str, Any] = {}
    for path, arr in flat.items():
        parts = path.split(_SEP)
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"task path {path!r} clashes with an array")
            node = child
        node[parts[-1]] = arr
    return tree


def task_bytes(task: bytes | bytearray | memoryview | Mapping[str, Any]) -> bytes:
    """The wire bytes of ``task``: bytes as they are, a dict of arrays via :func:`pack_arrays`."""
    if isinstance(task, bytes | bytearray | memoryview):
        return bytes(task)
    if isinstance(task, Mapping):
        return pack_arrays(task)
    raise ConfigError(f"a task is bytes or a dict of arrays, not {type(task).__name__}")


@dataclass(frozen=True)
class Task:
    """What a client received for a round: ``data`` (bytes) and its ``digest``.

    ``round`` is the server's round number. :meth:`arrays` decodes a :func:`pack_arrays` task.
    """

    data: bytes
    round: int = 0
    digest: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", context_digest(self.data))

    def arrays(self) -> dict[str, Any]:
        """The task as a nested dict of arrays (see :func:`unpack_arrays`)."""
        return unpack_arrays(self.data)


def _flatten(node: Any, prefix: str, out: dict[str, npt.NDArray[Any]], depth: int) -> None:
    if depth > 32:
        raise ConfigError("a task tree is nested too deeply")
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str) or not key or _SEP in key:
                raise ConfigError(f"task keys must be non-empty strings without '/': {key!r}")
            _flatten(value, f"{prefix}{key}{_SEP}", out, depth + 1)
        return
    if depth == 0:
        raise ConfigError("a task tree is a dict of arrays")
    detach = getattr(node, "detach", None)
    if callable(detach):  # a PyTorch tensor
        node = detach().cpu().numpy()
    arr = np.asarray(node)
    if arr.dtype.kind not in "biufc":
        raise ConfigError(f"task leaf {prefix[:-1]!r} has dtype {arr.dtype}; numbers only")
    out[prefix[:-1]] = np.asarray(arr, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
