"""The one ring module: the plain sum every check uses, and one definition of each ring name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.ring import ring_sum, word_dtype
from secagg.errors import EncodingError

SRC = Path(__file__).resolve().parents[2] / "src" / "secagg"


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 64),
    st.lists(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3), max_size=6),
)
def test_ring_sum_is_the_integer_sum_mod_2_to_the_b(bits: int, rows: list[list[int]]) -> None:
    vectors = [np.array(r, dtype=np.int64) for r in rows]
    before = [v.copy() for v in vectors]
    total = ring_sum(vectors, bits, dim=3)
    assert total.dtype == word_dtype(bits)
    expected = [sum(col) % (1 << bits) for col in zip(*rows, strict=True)] if rows else [0] * 3
    assert [int(x) for x in total] == expected
    assert all(np.array_equal(a, b) for a, b in zip(vectors, before, strict=True))  # untouched


def test_ring_sum_takes_any_integer_words_and_refuses_floats_and_ragged_input() -> None:
    a = np.array([2**32 - 1, 5], dtype=np.uint64)
    b = np.array([1, 2**31], dtype=np.uint32)
    assert ring_sum([a, b], 32).tolist() == [0, 2**31 + 5]
    assert ring_sum([a, b], 8).tolist() == [0, 5]
    with pytest.raises(EncodingError, match="integers"):
        ring_sum([np.zeros(2)], 8)
    with pytest.raises(EncodingError, match="shape"):
        ring_sum([a, np.zeros(3, dtype=np.uint32)], 8)
    with pytest.raises(EncodingError, match="dim="):
        ring_sum([], 8)


def test_an_empty_plain_total_is_zeros() -> None:
    """simulate's plain_total goes through ring_sum: no included client means a zero vector."""
    assert ring_sum([], 40, dim=4).tolist() == [0, 0, 0, 0]
    assert ring_sum([], 40, dim=4).dtype == np.uint64


def _assignments(name: str) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.append(path.relative_to(SRC).as_posix())
    return found


@pytest.mark.parametrize(
    ("name", "home"), [("RingArray", "crypto/ring.py"), ("Mode", "graph/mode.py")]
)
def test_each_vocabulary_name_is_defined_once(name: str, home: str) -> None:
    assert _assignments(name) == [home]


def test_ring_helpers_are_defined_only_in_the_ring_module() -> None:
    defined = {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef)
        and node.name in ("ring_mask", "word_dtype", "check_bits", "ring_sum")
    }
    assert defined == {"crypto/ring.py"}
