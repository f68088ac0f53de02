"""Pytree flatten / restore for NumPy, Python scalars and (when installed) PyTorch."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any

import numpy as np
import pytest

from secagg.encoding import flatten, unflatten
from secagg.errors import EncodingError

Pair = namedtuple("Pair", ["left", "right"])


def _nested() -> dict[str, Any]:
    return {
        "b": [np.arange(6, dtype=np.float32).reshape(2, 3), 2.5, 7],
        "a": OrderedDict(z=np.array([[1.5]]), y=np.int32(-4)),
        "c": (np.array([200, 3], dtype=np.uint8), Pair(np.float16(0.5), np.zeros(0))),
        "d": np.array(3.25),
    }


def _assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        assert np.array_equal(a, b)
    else:
        assert a == b


def test_numpy_round_trip_restores_containers_shapes_and_dtypes() -> None:
    tree = _nested()
    vector, treedef = flatten(tree)
    assert vector.dtype == np.float64
    assert treedef.size == vector.size == 6 + 1 + 1 + 1 + 1 + 2 + 1 + 0 + 1
    assert treedef.num_leaves == 9
    _assert_same(unflatten(treedef, vector), tree)


def test_order_is_sorted_keys_then_positions_in_c_order() -> None:
    tree = {"y": np.array([[1.0, 2.0], [3.0, 4.0]]), "x": [5.0, np.array([6, 7])]}
    vector, _ = flatten(tree)
    assert vector.tolist() == [5.0, 6.0, 7.0, 1.0, 2.0, 3.0, 4.0]


def test_insertion_order_does_not_change_the_vector_and_is_restored() -> None:
    a = {"p": np.ones(2), "q": np.zeros(3)}
    b = {"q": np.zeros(3), "p": np.ones(2)}
    va, ta = flatten(a)
    vb, tb = flatten(b)
    assert np.array_equal(va, vb)
    assert ta.signature == tb.signature
    assert list(unflatten(tb, va)) == ["q", "p"]


def test_signature_ignores_dtypes_and_sequence_kind_but_not_shapes_or_keys() -> None:
    base = flatten({"w": np.zeros((2, 2)), "b": [np.zeros(2)]})[1].signature
    assert flatten({"w": np.ones((2, 2), np.float32), "b": (np.ones(2),)})[1].signature == base
    assert flatten({"w": np.zeros(4), "b": [np.zeros(2)]})[1].signature != base
    assert flatten({"w2": np.zeros((2, 2)), "b": [np.zeros(2)]})[1].signature != base


def test_integer_leaves_are_rounded_and_saturated() -> None:
    tree = {
        "i8": np.zeros(3, np.int8),
        "u": np.zeros(1, np.uint16),
        "i": 0,
        "big": np.zeros(1, np.int64),
    }
    _, treedef = flatten(tree)
    # flattening order: big, i, i8 (3 values), u
    out = unflatten(treedef, np.array([1e30, 7.4, 1e6, 2.6, -70000.0, -3.0]))
    assert out["i"] == 7
    assert out["i8"].tolist() == [127, 3, -128]
    assert out["u"].tolist() == [0]
    assert out["big"].dtype == np.int64
    assert out["big"][0] > 2**62


@pytest.mark.parametrize(
    "leaf", ["text", None, True, np.array([True]), np.array([1j]), object(), {1, 2}]
)
def test_unsupported_leaves_are_refused(leaf: object) -> None:
    with pytest.raises(EncodingError, match=r"tree\['k'\]"):
        flatten({"k": leaf})


def test_unsortable_keys_are_refused() -> None:
    with pytest.raises(EncodingError, match="sortable"):
        flatten({1: 1.0, "a": 2.0})


def test_unflatten_checks_the_length() -> None:
    _, treedef = flatten([np.zeros(3)])
    with pytest.raises(EncodingError, match=r"shape \(3,\)"):
        unflatten(treedef, np.zeros(4))


def test_bare_array_is_a_tree() -> None:
    x = np.arange(4.0).reshape(2, 2)
    v, t = flatten(x)
    _assert_same(unflatten(t, v), x)


# --- PyTorch -------------------------------------------------------------------------------


def test_torch_round_trip_restores_dtypes_devices_and_state_dict() -> None:
    torch = pytest.importorskip("torch", reason="torch not installed (optional extra 'torch')")
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    state = model.state_dict()
    state["half"] = torch.tensor([1.5, -2.0], dtype=torch.float16)
    state["bf"] = torch.tensor([[0.25]], dtype=torch.bfloat16)
    state["grad"] = torch.ones(2, requires_grad=True)
    vector, treedef = flatten(state)
    assert vector.size == sum(t.numel() for t in state.values())
    out = unflatten(treedef, vector)
    assert type(out) is type(state)
    assert list(out) == list(state)
    for k, t in state.items():
        assert isinstance(out[k], torch.Tensor)
        assert out[k].dtype == t.dtype
        assert out[k].device == t.device
        assert out[k].shape == t.shape
        assert torch.equal(out[k], t.detach())
    assert out["1.num_batches_tracked"].dtype == torch.int64


def test_torch_and_numpy_mix_and_share_a_signature() -> None:
    torch = pytest.importorskip("torch", reason="torch not installed (optional extra 'torch')")
    as_torch = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "s": [torch.tensor(2.0)]}
    as_numpy = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": [np.array(2.0)]}
    vt, tt = flatten(as_torch)
    vn, tn = flatten(as_numpy)
    assert np.array_equal(vt, vn)
    assert tt.signature == tn.signature
    restored = unflatten(tt, vt * 2)
    assert torch.equal(restored["w"], as_torch["w"] * 2)
    assert restored["s"][0].shape == ()


def test_torch_unsupported_dtypes() -> None:
    torch = pytest.importorskip("torch", reason="torch not installed (optional extra 'torch')")
    with pytest.raises(EncodingError, match="unsupported dtype"):
        flatten({"c": torch.zeros(2, dtype=torch.complex64)})
    with pytest.raises(EncodingError, match="unsupported dtype"):
        flatten([torch.zeros(2, dtype=torch.bool)])
