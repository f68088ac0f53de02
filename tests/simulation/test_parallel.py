"""secagg.simulation.parallel: process-parallel mask expansion equals the serial MaskPRG."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import numpy as np
import pytest

from secagg.crypto.prg import MaskPRG
from secagg.crypto.ring import word_dtype
from secagg.errors import ConfigError
from secagg.simulation.parallel import (
    MaskPool,
    add_many_parallel,
    mask_inputs_parallel,
    slice_bounds,
)


@pytest.fixture(scope="module")
def pool() -> Iterator[MaskPool]:
    with MaskPool(3) as p:
        yield p


@pytest.mark.parametrize("bits", [8, 20, 32, 48, 64])
@pytest.mark.parametrize("dim", [1, 3, 5, 17, 1000, 70_001])
def test_add_many_matches_serial(pool: MaskPool, bits: int, dim: int) -> None:
    rng = np.random.default_rng(dim * 100 + bits)
    acc = rng.integers(0, 1 << min(bits, 63), dim, dtype=np.uint64).astype(word_dtype(bits))
    keys = [(bytes([i]) * 16, bool(i % 2)) for i in range(5)]
    expected = acc.copy()
    MaskPRG(bits).add_many(expected, keys)
    got = acc.copy()
    pool.add_many(got, bits, keys)
    assert np.array_equal(got, expected)


def test_slice_bounds_cover_and_align() -> None:
    for dim in (1, 4, 5, 1000, 12345):
        for itemsize in (4, 8):
            for parts in (1, 2, 3, 7):
                bounds = slice_bounds(dim, itemsize, parts)
                assert bounds[0][0] == 0
                assert bounds[-1][1] == dim
                for (_, hi), (lo, _) in itertools.pairwise(bounds):
                    assert hi == lo
                assert all(lo * itemsize % 16 == 0 for lo, _ in bounds)


def test_serial_fallback_and_short_lived_pool() -> None:
    keys = [(os.urandom(16), False), (os.urandom(16), True)]
    base = np.arange(1000, dtype=np.uint32)
    expected = base.copy()
    MaskPRG(32).add_many(expected, keys)
    for workers in (1, 2):
        got = base.copy()
        add_many_parallel(got, 32, keys, workers=workers)
        assert np.array_equal(got, expected)


def test_mask_inputs_matches_serial(pool: MaskPool) -> None:
    rows = [np.full(333, i, dtype=np.uint32) for i in range(7)]
    key_lists = [[(bytes([i, j]) * 8, j == 1) for j in range(3)] for i in range(7)]
    expected = []
    for row, keys in zip(rows, key_lists, strict=True):
        out = row.copy()
        MaskPRG(32).add_many(out, keys)
        expected.append(out)
    got = pool.mask_inputs(rows, key_lists, 32)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    serial = mask_inputs_parallel(rows, key_lists, 32, workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(serial, expected, strict=True))


def test_rejects_bad_arguments(pool: MaskPool) -> None:
    with pytest.raises(ConfigError):
        MaskPool(0)
    with pytest.raises(ConfigError):
        pool.add_many(np.zeros(10, dtype=np.uint64), 32, [(bytes(16), False)])
    with pytest.raises(ConfigError):
        pool.mask_inputs([np.zeros(3, dtype=np.uint32)], [], 32)


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_masked_sum_matches_serial(pool: MaskPool, bits: int) -> None:
    dtype = word_dtype(bits)
    rows = [np.full(101, i + 1, dtype=dtype) for i in range(5)]
    key_lists = [[(bytes([i, j]) * 8, j == 0) for j in range(2)] for i in range(5)]
    expected = np.zeros(101, dtype=dtype)
    for row, keys in zip(rows, key_lists, strict=True):
        out = row.copy()
        MaskPRG(bits).add_many(out, keys)
        np.add(expected, out, out=expected)
    if bits < 32:
        expected &= dtype.type((1 << bits) - 1)
    assert np.array_equal(pool.masked_sum(rows, key_lists, bits), expected)
