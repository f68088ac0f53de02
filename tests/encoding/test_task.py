"""secagg.encoding.task: the pickle-free array archive and the chunked task on the wire."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import secagg
from secagg.transport import secagg_pb2 as pb
from secagg.transport.taskwire import TaskAssembler, task_frames

_DTYPES = st.sampled_from(["<f4", "<f8", "<i8", "<u4", "|u1", "|b1", "<c16"])
_ARRAYS = _DTYPES.flatmap(
    lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
)
_KEYS = st.text(st.characters(blacklist_characters="/\x00", codec="utf-8"), min_size=1, max_size=8)
_TREES = st.recursive(
    st.dictionaries(_KEYS, _ARRAYS, min_size=1, max_size=4),
    lambda children: st.dictionaries(_KEYS, children, min_size=1, max_size=3),
    max_leaves=8,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True))


@settings(max_examples=60, deadline=None)
@given(_TREES)
def test_pack_round_trips_and_is_deterministic(tree: dict[str, Any]) -> None:
    data = secagg.pack_arrays(tree)
    assert _same(secagg.unpack_arrays(data), tree)
    assert secagg.pack_arrays(secagg.unpack_arrays(data)) == data
    assert secagg.Task(data).digest == secagg.context_digest(data)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(1, 700))
def test_any_chunking_reassembles_the_task(task: bytes, chunk: int) -> None:
    sid = b"\x07" * 32
    frames = task_frames(sid, task, chunk)
    assert len(frames) == -(-len(task) // chunk)
    asm = TaskAssembler(sid, len(task), len(task))
    for frame in frames:
        asm.add(pb.ServerFrame.FromString(frame).task_chunk)
    assert asm.complete
    assert asm.data() == task
