"""Process-parallel mask expansion for the server's unmasking and for client simulation.

The GIL is held inside the AES calls (``update_into``), so threads do not help; this module
uses processes. Two ways to split the work:

* :func:`add_many_parallel` splits the *vector*: each worker expands every key, but only for
  its own slice of word indices, and returns the slice's sum of masks, which the caller adds
  into the accumulator. AES-CTR
  can seek: the keystream of word ``i`` starts at byte ``i * wordsize``, i.e. in counter block
  ``i * wordsize // 16``, so a worker whose slice starts on a 16-byte boundary builds its cipher
  with the initial counter block set to that block number (big-endian, as CTR mode increments
  the whole 128-bit block). The result is bit-for-bit the result of :meth:`MaskPRG.add_many`.
* :func:`mask_inputs_parallel` splits the *clients*: each worker computes whole masked inputs
  (input plus/minus k + 1 masks) for its share of the clients, as a simulation of many clients
  on one machine would (each vector is pickled both ways); :meth:`MaskPool.masked_sum` reads
  the inputs from a memory-mapped file and returns only each worker's partial sum of masked
  inputs, which is what the server's running sum needs.

A :class:`MaskPool` can be kept and reused across calls; the functions also accept
``workers=N`` and then make a short-lived pool. ``workers <= 1`` runs serially in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType
from typing import cast

import numpy as np

from secagg.crypto.prg import MaskPRG
from secagg.crypto.ring import RingArray, check_bits, ring_mask, word_dtype
from secagg.errors import ConfigError

__all__ = [
    "MaskPool",
    "add_many_parallel",
    "mask_inputs_parallel",
    "slice_bounds",
]

_BLOCK = 16
KeyList = Sequence[tuple[bytes, bool]]


def slice_bounds(dim: int, itemsize: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(dim)`` words into at most ``parts`` slices starting on 16-byte boundaries."""
    per_block = _BLOCK // itemsize
    blocks = -(-dim // per_block)
    parts = max(1, min(parts, blocks))
    bounds = []
    for p in range(parts):
        lo = (blocks * p // parts) * per_block
        hi = min(dim, (blocks * (p + 1) // parts) * per_block)
        if hi > lo:
            bounds.append((lo, hi))
    return bounds


def _add_slice(acc: RingArray, keys: KeyList, start_word: int, bits: int) -> None:
    """``acc`` is words [start_word, start_word + len(acc)) of the full vector; add every mask."""
    MaskPRG(bits).add_many(acc, keys, start_word=start_word)


def _slice_worker(dim: int, bits: int, lo: int, hi: int, keys: KeyList) -> RingArray:
    """The sum of every mask over words [lo, hi), as a new array."""
    delta: RingArray = np.zeros(hi - lo, dtype=word_dtype(bits))
    _add_slice(delta, keys, lo, bits)
    return delta


def _pid(_: int) -> int:
    time.sleep(0.05)  # keep each worker busy long enough that all of them start
    return os.getpid()


def _mask_one(row: RingArray, keys: KeyList, bits: int) -> RingArray:
    out = cast(RingArray, np.array(row, dtype=word_dtype(bits), copy=True))
    MaskPRG(bits).add_many(out, keys)
    return out


def _mask_batch(rows: list[RingArray], key_lists: list[KeyList], bits: int) -> list[RingArray]:
    prg = MaskPRG(bits)
    outs: list[RingArray] = []
    for row, keys in zip(rows, key_lists, strict=True):
        out = cast(RingArray, np.array(row, dtype=word_dtype(bits), copy=True))
        prg.add_many(out, keys)
        outs.append(out)
    return outs


def _masked_sum_batch(
    path: str,
    dtype_str: str,
    shape: tuple[int, int],
    indices: list[int],
    key_lists: list[KeyList],
    bits: int,
) -> RingArray:
    """Sum mod 2^b of the masked inputs of rows ``indices`` of the memory-mapped input matrix."""
    dtype = np.dtype(dtype_str)
    matrix = np.memmap(path, dtype=dtype, mode="r", shape=shape)
    total = cast(RingArray, np.zeros(shape[1], dtype=dtype))
    out = cast(RingArray, np.empty(shape[1], dtype=dtype))
    prg = MaskPRG(bits)
    for i, keys in zip(indices, key_lists, strict=True):
        out[:] = matrix[i]
        prg.add_many(out, keys)
        np.add(total, out, out=total)
    del matrix
    return total


class MaskPool:
    """A reusable pool of worker processes for mask expansion (``with MaskPool(2) as pool``).

    ``start_method`` is the multiprocessing start method (default: fork where available); a
    process that runs gRPC passes ``"spawn"``, since forking it is unsafe.
    """

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        count = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        self.workers = count
        method = start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self._executor = ProcessPoolExecutor(count, mp_context=mp.get_context(method))

    def __enter__(self) -> MaskPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut the worker processes down."""
        self._executor.shutdown(wait=True)

    def warm_up(self) -> None:
        """Start every worker process now (so that timings exclude start-up)."""
        list(self._executor.map(_pid, range(self.workers * 2)))

    def add_many(self, acc: RingArray, bits: int, keys: Iterable[tuple[bytes, bool]]) -> None:
        """Like :meth:`MaskPRG.add_many`, with the vector split across the workers."""
        bits = check_bits(bits)
        dtype = word_dtype(bits)
        if acc.dtype != dtype or acc.ndim != 1 or not acc.flags.c_contiguous:
            raise ConfigError(f"accumulator must be a contiguous 1-D {dtype} array for b={bits}")
        key_list = [(bytes(k), bool(s)) for k, s in keys]
        if not key_list or acc.size == 0:
            return
        bounds = slice_bounds(acc.size, dtype.itemsize, self.workers)
        futures = [
            self._executor.submit(_slice_worker, acc.size, bits, lo, hi, key_list)
            for lo, hi in bounds
        ]
        for (lo, hi), future in zip(bounds, futures, strict=True):
            target = acc[lo:hi]
            np.add(target, future.result(), out=target)
        if bits not in (32, 64):
            np.bitwise_and(acc, dtype.type(ring_mask(bits)), out=acc)

    def mask_inputs(
        self, rows: Sequence[RingArray], key_lists: Sequence[KeyList], bits: int
    ) -> list[RingArray]:
        """Each client's masked input ``row ± masks(keys)``, clients spread over the workers."""
        if len(rows) != len(key_lists):
            raise ConfigError("need one key list per input row")
        parts = max(1, min(self.workers, len(rows)))
        groups = [list(range(p, len(rows), parts)) for p in range(parts)]
        futures = [
            self._executor.submit(
                _mask_batch, [rows[i] for i in g], [list(key_lists[i]) for i in g], bits
            )
            for g in groups
        ]
        out: list[RingArray | None] = [None] * len(rows)
        for g, future in zip(groups, futures, strict=True):
            for i, arr in zip(g, future.result(), strict=True):
                out[i] = arr
        return [a for a in out if a is not None]

    def masked_sum(
        self, rows: Sequence[RingArray] | RingArray, key_lists: Sequence[KeyList], bits: int
    ) -> RingArray:
        """Sum mod 2^b of every client's masked input, clients spread over the workers.

        The inputs go to the workers through one memory-mapped file in ``/dev/shm`` (no
        pickling of the vectors) and each worker returns a single partial sum, so the only
        per-client traffic between processes is the key list.
        """
        if len(rows) != len(key_lists) or len(rows) == 0:
            raise ConfigError("need one key list per input row, and at least one row")
        dtype = word_dtype(bits)
        dim = len(rows[0])
        shape = (len(rows), dim)
        shm_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - private file
        with tempfile.NamedTemporaryFile(prefix="secagg-", dir=shm_dir) as handle:
            matrix = np.memmap(handle.name, dtype=dtype, mode="w+", shape=shape)
            for i, row in enumerate(rows):
                matrix[i] = row
            matrix.flush()
            del matrix
            parts = max(1, min(self.workers, len(rows)))
            groups = [list(range(p, len(rows), parts)) for p in range(parts)]
            futures = [
                self._executor.submit(
                    _masked_sum_batch,
                    handle.name,
                    dtype.str,
                    shape,
                    g,
                    [list(key_lists[i]) for i in g],
                    bits,
                )
                for g in groups
            ]
            total = cast(RingArray, np.zeros(dim, dtype=dtype))
            for future in futures:
                np.add(total, future.result(), out=total)
        if bits not in (32, 64):
            np.bitwise_and(total, dtype.type(ring_mask(bits)), out=total)
        return total


def add_many_parallel(
    acc: RingArray,
    bits: int,
    keys: Iterable[tuple[bytes, bool]],
    *,
    workers: int = 2,
    pool: MaskPool | None = None,
) -> None:
    """``acc ±= mask(key)`` for every (key, subtract) pair, in place, using processes."""
    if pool is None and workers <= 1:
        MaskPRG(bits).add_many(acc, keys)
        return
    if pool is not None:
        pool.add_many(acc, bits, keys)
        return
    with MaskPool(workers) as own:
        own.add_many(acc, bits, keys)


def mask_inputs_parallel(
    rows: Sequence[RingArray],
    key_lists: Sequence[KeyList],
    bits: int,
    *,
    workers: int = 2,
    pool: MaskPool | None = None,
) -> list[RingArray]:
    """Masked inputs for many simulated clients, clients spread over processes."""
    if pool is None and workers <= 1:
        return [_mask_one(r, k, bits) for r, k in zip(rows, key_lists, strict=True)]
    if pool is not None:
        return pool.mask_inputs(rows, key_lists, bits)
    with MaskPool(workers) as own:
        return own.mask_inputs(rows, key_lists, bits)
