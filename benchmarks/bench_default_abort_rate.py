"""Abort rate of default-parameter rounds under independent random dropouts (issue 11.2).

For each n, takes the parameter finder's default (k, t) (semi-honest, 5% design dropout and
corruption rates), then runs real rounds with ``secagg.simulate`` in which every client drops
independently with probability ``--rate`` at a uniformly random round (0..4), and counts the
rounds that abort. Prints one line per n with the measured rate, a 95% Wilson interval and,
where the finder reports one, its own bound on the abort probability.

    PYTHONPATH=src python benchmarks/bench_default_abort_rate.py --sizes 10:2000,30:1000

Runs on older commits too (it uses only find_parameters and simulate), so before/after can
be measured side by side with ``git worktree add``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Sequence

import numpy as np

from secagg import simulate
from secagg.errors import RoundAbortedError
from secagg.graph import find_parameters


def _wilson(hits: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = hits / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    half /= 1 + z * z / trials
    return max(0.0, centre - half), min(1.0, centre + half)


def measure(n: int, seeds: int, rate: float, dim: int) -> dict[str, float]:
    """Run ``seeds`` rounds of n clients with default parameters; count aborts."""
    found = find_parameters(n)
    inputs = np.zeros((n, dim), dtype=np.uint32)
    aborts = 0
    for seed in range(seeds):
        draw = random.Random(f"abort-rate/{n}/{seed}")  # dropout schedule only, not crypto
        schedule = {c: draw.randrange(5) for c in range(n) if draw.random() < rate}
        try:
            simulate(
                inputs,
                bits=16,
                degree=found.degree,
                threshold=found.threshold,
                dropout=schedule,
                seed=seed,
            )
        except RoundAbortedError:
            aborts += 1
    low, high = _wilson(aborts, seeds)
    claimed = getattr(found, "abort_probability", None)
    return {
        "n": n,
        "k": found.degree,
        "t": found.threshold,
        "seeds": seeds,
        "aborts": aborts,
        "rate": aborts / seeds,
        "low": low,
        "high": high,
        "claimed": math.nan if claimed is None else claimed,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10:2000,30:1000,100:300,1000:20",
        help="comma-separated n:seeds pairs",
    )
    parser.add_argument("--rate", type=float, default=0.05, help="per-client dropout probability")
    parser.add_argument("--dim", type=int, default=4, help="vector length D")
    args = parser.parse_args(argv)
    print(f"independent dropouts at p = {args.rate}, random round 0..4, D = {args.dim}")
    print(
        f"{'n':>6} {'k':>4} {'t':>4} {'seeds':>6} {'aborts':>6} {'rate':>8} "
        f"{'95% CI':>17} {'finder bound':>12} {'secs':>6}"
    )
    for item in args.sizes.split(","):
        n, seeds = (int(x) for x in item.split(":"))
        start = time.perf_counter()
        r = measure(n, seeds, args.rate, args.dim)
        secs = time.perf_counter() - start
        claimed = "-" if math.isnan(r["claimed"]) else f"{r['claimed']:.3g}"
        print(
            f"{n:>6} {r['k']:>4} {r['t']:>4} {seeds:>6} {r['aborts']:>6} {r['rate']:>8.2%} "
            f"[{r['low']:>6.2%}, {r['high']:>6.2%}] {claimed:>12} {secs:>6.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
