"""Cost of malicious-server mode relative to semi-honest mode, via ``secagg.simulate``.

For each (n, D) the parameter finder picks (k, t) per mode (5% dropout, 5% corrupt clients);
both modes then run one round on the same inputs with the same dropout schedule (5% of clients,
at random rounds). A third row runs malicious mode at the semi-honest k (with the smallest t
malicious mode allows there), to separate the cost of signatures from that of the larger graph.
Printed per mode: k, t, end-to-end wall seconds, mean and max client seconds
(summed over rounds), server seconds (summed over rounds), the consistency round's share, bytes
per client, and the malicious / semi-honest ratios. Figures only: no assertions.

    .venv/bin/python benchmarks/bench_malicious.py            # n = 100 and n = 1000, D = 10^5
    .venv/bin/python benchmarks/bench_malicious.py --n 100    # one size only
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import secagg
from secagg.graph import find_parameters, threshold_bounds

MODES = ("semi-honest", "malicious")
DROPOUT = 0.05
CORRUPT = 0.05
BITS = 32


def run(n: int, dim: int, mode: str, seed: int, degree: int | None = None) -> dict[str, Any]:
    params = find_parameters(n, dropout_rate=DROPOUT, corrupt_rate=CORRUPT, mode=mode)  # type: ignore[arg-type]
    threshold = params.threshold
    if degree is not None:  # the other mode's k, with this mode's smallest t
        threshold = threshold_bounds(degree, mode)[0]  # type: ignore[arg-type]
    else:
        degree = params.degree
    inputs = np.random.default_rng(seed).integers(0, 2**BITS, size=(n, dim), dtype=np.uint32)
    start = time.perf_counter()
    result = secagg.simulate(
        inputs,
        bits=BITS,
        degree=degree,
        threshold=threshold,
        dropout=DROPOUT,
        mode=mode,  # type: ignore[arg-type]
        seed=seed,
        corrupt_rate=CORRUPT,
    )
    wall = time.perf_counter() - start
    ok = bool(np.array_equal(result.total, result.plain_total(inputs)))
    timings = result.timings
    client_mean = sum(t.client_mean for t in timings.values())
    client_max = sum(t.client_max for t in timings.values())
    server = sum(t.server for t in timings.values())
    consistency = timings.get("consistency-check")
    return {
        "k": result.config.degree,
        "t": result.config.threshold,
        "wall": wall,
        "client_mean": client_mean,
        "client_max": client_max,
        "server": server,
        "consistency_client": consistency.client_mean if consistency else 0.0,
        "consistency_server": consistency.server if consistency else 0.0,
        "unmask_client": timings["unmasking"].client_mean if "unmasking" in timings else 0.0,
        "bytes_sent": float(np.mean(result.client_bytes_sent)),
        "bytes_received": float(np.mean(result.client_bytes_received)),
        "included": len(result.included),
        "ok": ok,
        "rounds": {name: (t.client_mean, t.server) for name, t in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="number of clients (repeatable)")
    parser.add_argument("--dim", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = args.n or [100, 1000]
    for n in sizes:
        rows = {mode: run(n, args.dim, mode, args.seed) for mode in MODES}
        # Malicious mode at the semi-honest k: separates the cost of signatures and the extra
        # round from the cost of the larger graph malicious mode needs.
        rows["mal@semi-k"] = run(n, args.dim, "malicious", args.seed, rows["semi-honest"]["k"])
        print(f"\nn = {n}, D = {args.dim}, b = {BITS}, dropout {DROPOUT:.0%} at random rounds")
        header = (
            f"{'mode':<12} {'k':>4} {'t':>4} {'wall s':>8} {'client s':>9} {'client max':>10} "
            f"{'server s':>9} {'r3 client':>9} {'r3 server':>9} {'r4 client':>9} "
            f"{'KB sent':>8} {'KB recv':>8} {'incl':>5} sum"
        )
        print(header)
        for mode, r in rows.items():
            print(
                f"{mode:<12} {r['k']:>4} {r['t']:>4} {r['wall']:>8.2f} {r['client_mean']:>9.4f} "
                f"{r['client_max']:>10.4f} {r['server']:>9.3f} {r['consistency_client']:>9.5f} "
                f"{r['consistency_server']:>9.4f} {r['unmask_client']:>9.5f} "
                f"{r['bytes_sent'] / 1024:>8.1f} {r['bytes_received'] / 1024:>8.1f} "
                f"{r['included']:>5} {'ok' if r['ok'] else 'WRONG'}"
            )
        print("per round, mean client s / server s:")
        for mode, r in rows.items():
            cells = "  ".join(f"{name} {c:.4f}/{sv:.3f}" for name, (c, sv) in r["rounds"].items())
            print(f"  {mode:<12} {cells}")
        semi, mal = rows["semi-honest"], rows["malicious"]
        print(
            "malicious / semi-honest: "
            f"wall x{mal['wall'] / semi['wall']:.2f}, "
            f"client x{mal['client_mean'] / semi['client_mean']:.2f}, "
            f"server x{mal['server'] / semi['server']:.2f}, "
            f"bytes sent x{mal['bytes_sent'] / semi['bytes_sent']:.3f}, "
            f"bytes received x{mal['bytes_received'] / semi['bytes_received']:.3f}"
        )


if __name__ == "__main__":
    main()
