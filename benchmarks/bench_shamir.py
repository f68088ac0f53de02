"""Shamir share / reconstruct time for one 32-byte secret over GF(2^31 - 1).

For each (m, t): split to m points; reconstruct from exactly t shares (no check possible);
reconstruct from all m (every extra share checked against the polynomial); and, as the error
path, reconstruct from all m with one tampered share (detected and named). Best of N.

    .venv/bin/python -m benchmarks.bench_shamir [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the src layout importable if needed
    try:
        import secagg  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from secagg.crypto.shamir import PRIME, Share, reconstruct_secret, split_secret
from secagg.errors import InconsistentSharesError

FULL_CONFIGS = [(1000, 501), (100, 51)]
QUICK_CONFIGS = [(100, 51), (20, 11)]
HEADER = (
    f"{'m':>6} {'t':>5}  {'share ms':>9} {'rec(t) ms':>10} {'rec(m) ms':>10}"
    f" {'share+rec(t)':>13} {'share+rec(m)':>13} {'1 bad, named ms':>16}"
)


def timed(task: Callable[[], object]) -> float:
    start = time.perf_counter()
    task()
    return time.perf_counter() - start


def bench(m: int, t: int, repeats: int) -> tuple[float, float, float, float]:
    """Best seconds for (share, reconstruct from t, reconstruct from m, named bad share)."""
    secret = os.urandom(32)
    points = range(1, m + 1)
    shares = split_secret(secret, points, t)
    victim = m // 3
    bad = list(shares)
    values = list(bad[victim].values)
    values[0] = (values[0] + 1) % PRIME
    bad[victim] = Share(bad[victim].x, tuple(values))

    def rec(given: list[Share]) -> None:
        if reconstruct_secret(given, t) != secret:
            raise AssertionError("reconstruction returned the wrong secret")

    def rec_bad() -> None:
        try:
            reconstruct_secret(bad, t)
        except InconsistentSharesError as exc:
            if exc.bad_points != (victim + 1,):
                raise AssertionError(f"named {exc.bad_points}, expected {victim + 1}") from None
        else:
            raise AssertionError("tampered share not detected")

    timings = [float("inf")] * 4
    tasks: list[Callable[[], object]] = [
        lambda: split_secret(secret, points, t),
        lambda: rec(shares[:t]),
        lambda: rec(shares),
        rec_bad,
    ]
    for _ in range(repeats):  # interleave the measurements
        for i, task in enumerate(tasks):
            timings[i] = min(timings[i], timed(task))
    return timings[0], timings[1], timings[2], timings[3]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="best of N (default 5)")
    args = parser.parse_args(argv)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    repeats = args.repeats or (2 if args.quick else 5)
    print(f"Shamir over GF(2^31 - 1), one 32-byte secret (16 limbs), best of {repeats}")
    print(HEADER)
    for m, t in configs:
        share, rec_t, rec_m, named = bench(m, t, repeats)
        print(
            f"{m:>6} {t:>5}  {share * 1e3:>9.2f} {rec_t * 1e3:>10.2f} {rec_m * 1e3:>10.2f}"
            f" {(share + rec_t) * 1e3:>13.2f} {(share + rec_m) * 1e3:>13.2f}"
            f" {named * 1e3:>16.2f}"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
