"""Mask PRG throughput: raw AES-128-CTR keystream vs MaskPRG fill / add_into / add_many.

Every figure of one (D, b) row is measured in the same run, best of N, with the measurements
interleaved so that drift on a shared machine hits them alike. ``ratio`` is a throughput in
words/s (per key for ``add_many``) divided by the raw ``update_into`` keystream throughput.

    .venv/bin/python -m benchmarks.bench_prg [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the src layout importable if needed
    try:
        import secagg  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.crypto.prg import CHUNK_BYTES, MaskPRG
from secagg.crypto.ring import word_dtype

FULL_CONFIGS = [(10_000_000, 32), (10_000_000, 64), (1_000_000, 32)]
QUICK_CONFIGS = [(100_000, 32), (100_000, 64)]
MANY_KEYS = 8  # k + 1 masks per accumulator walk: k pairwise masks and the self mask
HEADER = (
    f"{'D':>10} {'b':>3}  {'measurement':<30} {'best ms':>9} {'Mwords/s':>9} {'GB/s':>6}"
    f" {'ratio':>6}"
)


def raw_keystream(key: bytes, nbytes: int, buf: bytearray, zeros: bytes) -> None:
    """``nbytes`` of AES-128-CTR keystream through one reused ``len(buf)``-byte buffer."""
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    full, rest = divmod(nbytes, len(buf))
    for _ in range(full):
        enc.update_into(zeros, buf)
    if rest:
        enc.update_into(memoryview(zeros)[:rest], memoryview(buf)[:rest])


def best_of(tasks: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best wall time of each task over ``repeats`` rounds, running the tasks interleaved."""
    best = dict.fromkeys(tasks, float("inf"))
    for _ in range(repeats):
        for name, task in tasks.items():
            start = time.perf_counter()
            task()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench(dim: int, bits: int, repeats: int) -> list[tuple[str, float, float, float | None]]:
    """Rows of (measurement, seconds, words processed, ratio to raw) for one (D, b)."""
    dtype = word_dtype(bits)
    nbytes = dim * dtype.itemsize
    keys = [bytes([i]) * 16 for i in range(1, MANY_KEYS + 1)]
    buf, zeros = bytearray(CHUNK_BYTES), bytes(CHUNK_BYTES)
    prg = MaskPRG(bits)
    # Touch every page before timing (first-touch page faults are not the PRG's cost).
    acc = np.ones(dim, dtype=dtype)
    out = np.ones(dim, dtype=dtype)
    other = np.ones(dim, dtype=dtype)
    many = [(k, i % 2 == 1) for i, k in enumerate(keys)]
    prg.add_into(acc, keys[0])
    prg.fill(keys[0], out)
    tasks: dict[str, Callable[[], None]] = {
        "raw update_into": lambda: raw_keystream(keys[0], nbytes, buf, zeros),
        "MaskPRG.fill": lambda: prg.fill(keys[0], out),
        "MaskPRG.add_into": lambda: prg.add_into(acc, keys[0]),
        f"MaskPRG.add_many x{MANY_KEYS}": lambda: prg.add_many(acc, many),
        "numpy in-place add": lambda: np.add(acc, other, out=acc),
    }
    best = best_of(tasks, repeats)
    raw_rate = dim / best["raw update_into"]
    rows: list[tuple[str, float, float, float | None]] = []
    for name, seconds in best.items():
        words = dim * (MANY_KEYS if name.startswith("MaskPRG.add_many") else 1)
        ratio = None if name.startswith("numpy") else (words / seconds) / raw_rate
        label = f"{name} (rate per key)" if name.startswith("MaskPRG.add_many") else name
        rows.append((label, seconds, words, ratio))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="best of N (default 5)")
    args = parser.parse_args(argv)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    repeats = args.repeats or (2 if args.quick else 5)
    chunk = f"chunk {CHUNK_BYTES // 1024} KiB"
    print(f"PRG throughput (AES-128-CTR mask PRG, IV zero), {chunk}, best of {repeats}")
    print("add_many: best ms is for all keys together; its rates and ratio are per key")
    print(HEADER)
    for dim, bits in configs:
        itemsize = word_dtype(bits).itemsize
        for label, seconds, words, ratio in bench(dim, bits, repeats):
            rate = words / seconds
            shown = "" if ratio is None else f"{ratio:.2f}"
            print(
                f"{dim:>10} {bits:>3}  {label:<30} {seconds * 1e3:>9.2f} {rate / 1e6:>9.1f}"
                f" {rate * itemsize / 1e9:>6.2f} {shown:>6}"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
