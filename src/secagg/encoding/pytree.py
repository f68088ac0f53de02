"""Flatten nested containers of arrays into one float64 vector, and restore them.

A pytree is a leaf or a dict / list / tuple of pytrees. Leaves are NumPy arrays and scalars
(float, signed or unsigned integer dtypes), Python floats and ints, and PyTorch tensors (torch is
optional and never imported here: a tensor can only exist if the caller imported torch).

Order is deterministic: dict entries by sorted key, sequences by position, each leaf in C order.
Two dicts with the same keys in a different insertion order flatten identically. Restoring
gives back the container types (dict subclasses such as OrderedDict, lists, tuples, namedtuples)
with the template's key order, and each leaf's shape, dtype and, for tensors, device. Integer
leaves are rounded to the nearest integer and saturated to their dtype's range; integers beyond
2^53 lose precision in float64.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.errors import EncodingError

__all__ = ["PyTree", "TreeDef", "flatten", "unflatten"]

PyTree = Any
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Leaf:
    kind: str  # "ndarray" | "npscalar" | "float" | "int" | "torch"
    shape: tuple[int, ...]
    dtype: str  # NumPy dtype string, or the torch dtype's name ("float32")
    device: str | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class _Node:
    container: type
    keys: tuple[Any, ...] | None  # sorted keys of a dict (the flattening order)
    key_order: tuple[Any, ...] | None  # the template's insertion order, for rebuilding
    children: tuple[_Leaf | _Node, ...]


@dataclass(frozen=True)
class TreeDef:
    """The structure of a flattened pytree: containers, keys and leaf shapes/dtypes/devices."""

    root: _Leaf | _Node

    @property
    def size(self) -> int:
        """Length of the flat vector."""
        return sum(leaf.size for leaf in _leaves(self.root))

    @property
    def num_leaves(self) -> int:
        """Number of leaves (arrays, tensors, scalars)."""
        return sum(1 for _ in _leaves(self.root))

    @property
    def signature(self) -> tuple[Any, ...]:
        """What two trees must share to be summed: dict keys, sequence lengths, leaf shapes.

        Container subclasses, list vs tuple, leaf kinds, dtypes and devices may differ.
        """
        return _signature(self.root)


def _leaves(node: _Leaf | _Node) -> Iterator[_Leaf]:
    if isinstance(node, _Leaf):
        yield node
    else:
        for child in node.children:
            yield from _leaves(child)


def _signature(node: _Leaf | _Node) -> tuple[Any, ...]:
    if isinstance(node, _Leaf):
        return ("leaf", node.shape)
    kind = "dict" if node.keys is not None else "seq"
    return (kind, node.keys, tuple(_signature(c) for c in node.children))


def _torch() -> Any:
    return sys.modules.get("torch")


def _is_tensor(obj: object) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def flatten(tree: PyTree) -> tuple[FloatArray, TreeDef]:
    """One float64 vector of all leaves in deterministic order, and the tree's structure."""
    parts: list[FloatArray] = []
    root = _flatten(tree, parts, "tree")
    vector = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
    return vector, TreeDef(root)


def _flatten(obj: object, parts: list[FloatArray], path: str) -> _Leaf | _Node:
    if isinstance(obj, dict):
        try:
            keys = tuple(sorted(obj))
        except TypeError:
            raise EncodingError(f"dict keys at {path} must be mutually sortable") from None
        children = tuple(_flatten(obj[k], parts, f"{path}[{k!r}]") for k in keys)
        return _Node(type(obj), keys, tuple(obj), children)
    if isinstance(obj, list | tuple):
        children = tuple(_flatten(v, parts, f"{path}[{i}]") for i, v in enumerate(obj))
        return _Node(type(obj), None, None, children)
    leaf, values = _flatten_leaf(obj, path)
    parts.append(values)
    return leaf


def _flatten_leaf(obj: object, path: str) -> tuple[_Leaf, FloatArray]:
    if isinstance(obj, bool | np.bool_):
        raise EncodingError(f"boolean leaf at {path} cannot be encoded")
    if isinstance(obj, float):
        return _Leaf("float", (), "float64"), np.array([obj], dtype=np.float64)
    if isinstance(obj, int):
        return _Leaf("int", (), "int64"), np.array([obj], dtype=np.float64)
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        if arr.dtype.kind not in "fiu":
            raise EncodingError(f"leaf at {path} has unsupported dtype {arr.dtype}")
        kind = "ndarray" if isinstance(obj, np.ndarray) else "npscalar"
        return _Leaf(kind, arr.shape, arr.dtype.str), arr.astype(np.float64).ravel()
    if _is_tensor(obj):
        return _flatten_tensor(obj, path)
    raise EncodingError(f"leaf at {path} has unsupported type {type(obj).__name__}")


def _flatten_tensor(t: Any, path: str) -> tuple[_Leaf, FloatArray]:
    torch = _torch()
    if t.layout != torch.strided:
        raise EncodingError(f"tensor at {path} has unsupported layout {t.layout}")
    if t.is_complex() or t.dtype == torch.bool:
        raise EncodingError(f"tensor at {path} has unsupported dtype {t.dtype}")
    dtype_name = str(t.dtype).removeprefix("torch.")
    leaf = _Leaf("torch", tuple(int(s) for s in t.shape), dtype_name, str(t.device))
    values = t.detach().to(device="cpu", dtype=torch.float64).numpy().ravel()
    return leaf, np.asarray(values, dtype=np.float64)


def unflatten(treedef: TreeDef, vector: npt.ArrayLike) -> PyTree:
    """Rebuild a pytree shaped like ``treedef`` from a flat vector of its size."""
    flat = np.asarray(vector, dtype=np.float64)
    if flat.shape != (treedef.size,):
        raise EncodingError(f"vector must have shape ({treedef.size},), got {flat.shape}")
    offsets = iter(np.cumsum([0, *(leaf.size for leaf in _leaves(treedef.root))]).tolist())
    start = next(offsets)

    def take(leaf: _Leaf) -> FloatArray:
        nonlocal start
        end = next(offsets)
        chunk = flat[start:end]
        start = end
        return chunk

    return _unflatten(treedef.root, take)


def _unflatten(node: _Leaf | _Node, take: Callable[[_Leaf], FloatArray]) -> PyTree:
    if isinstance(node, _Leaf):
        return _restore_leaf(node, take(node))
    values = [_unflatten(child, take) for child in node.children]
    if node.keys is not None:
        by_key = dict(zip(node.keys, values, strict=True))
        items = [(k, by_key[k]) for k in node.key_order or node.keys]
        try:
            return node.container(items)
        except TypeError:  # e.g. defaultdict, whose first argument is a factory
            return dict(items)
    if hasattr(node.container, "_fields"):  # namedtuple
        return node.container(*values)
    return node.container(values)


def _saturated_rint(values: FloatArray, lo: int, hi: int) -> FloatArray:
    # Saturate before casting: an out-of-range float-to-int cast is undefined. float(hi) can
    # round above hi (2^63 - 1 becomes 2^63), so step down to the largest float that fits.
    top = float(hi)
    if int(top) > hi:
        top = float(np.nextafter(top, 0.0))
    return np.clip(np.rint(values), float(lo), top)


def _to_int(values: FloatArray, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    info = np.iinfo(dtype)
    return _saturated_rint(values, int(info.min), int(info.max)).astype(dtype)


def _restore_leaf(leaf: _Leaf, values: FloatArray) -> PyTree:
    if leaf.kind == "float":
        return float(values[0])
    if leaf.kind == "int":
        return int(np.rint(values[0]))
    if leaf.kind in ("ndarray", "npscalar"):
        dtype = np.dtype(leaf.dtype)
        arr = _to_int(values, dtype) if dtype.kind in "iu" else values.astype(dtype)
        arr = arr.reshape(leaf.shape)
        return arr[()] if leaf.kind == "npscalar" else arr
    return _restore_tensor(leaf, values)


def _restore_tensor(leaf: _Leaf, values: FloatArray) -> PyTree:
    try:
        torch = _torch() or importlib.import_module("torch")
    except ImportError:
        raise EncodingError("restoring a tensor leaf needs torch installed") from None
    dtype = getattr(torch, leaf.dtype)
    if dtype.is_floating_point:
        source = values.copy()
    else:
        info = torch.iinfo(dtype)
        source = _saturated_rint(values, int(info.min), int(info.max))
    tensor = torch.from_numpy(source.reshape(leaf.shape))
    return tensor.to(device=leaf.device, dtype=dtype)
