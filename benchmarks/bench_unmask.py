"""The server's unmasking step at scale, against the mask-expansion limit measured in the same run.

A round's unmasking inputs are built as the server holds them (one decoded share per
(dealer, responding holder); seeds of survivors, private mask keys of clients that dropped
after sharing), then timed in three parts, best of N:

* ``reconstruct``: :func:`secagg.protocol.server.unmask.reconstruct_all` (Shamir, plus the
  public-key check of each recovered mask key);
* ``keys``: :func:`removal_keys` (HKDF per survivor; X25519 + HKDF per (dropped, surviving
  neighbour) pair);
* ``expand``: AES-CTR + add of exactly those masks into a D-word sum (``MaskPRG.add_many``):
  the limit, the work no unmasking can avoid. ``rate limit`` is the same figure from raw
  AES-CTR keystream and NumPy add throughput (bench_scaling's definition).

``unmask`` = reconstruct + keys + expand (what ``remove_masks`` and ``reconstruct_all`` cost
together). CPU seconds (``time.process_time``) are printed beside wall seconds: on a shared
machine they are the steadier figure. Runs against any tree with the same ``unmask`` API, so
before/after is ``PYTHONPATH=<tree>/src python -m benchmarks.bench_unmask``.

    python -m benchmarks.bench_unmask [--n 10000] [--dim 1000] [--dropout 0.05] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):  # run as a script: make the src layout importable if needed
    try:
        import secagg  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.prg import MaskPRG
from secagg.crypto.shamir import Share, split_secret
from secagg.graph import NeighbourGraph, find_parameters
from secagg.protocol.server.unmask import Reconstruction, reconstruct_all, removal_keys

BITS = 32


def build_round(n: int, degree: int, threshold: int, dropout: float, seed: int) -> dict[str, Any]:
    """Unmasking inputs of a round where ``dropout`` of the clients stop after sharing keys."""
    rnd = random.Random(seed)
    rng = DeterministicRandom(seed)
    session_id = rnd.randbytes(32)
    graph = NeighbourGraph(rnd.randbytes(32), range(1, n + 1), degree)
    keys = {u: X25519KeyPair.generate(rng) for u in range(1, n + 1)}
    publics = {u: k.public_bytes for u, k in keys.items()}
    dropped = set(rnd.sample(range(1, n + 1), round(dropout * n)))
    alive = frozenset(u for u in range(1, n + 1) if u not in dropped)
    seed_shares: dict[int, dict[int, Share]] = {}
    key_shares: dict[int, dict[int, Share]] = {}
    for v in range(1, n + 1):
        holders = sorted({v, *graph.neighbours(v)})
        secret = keys[v].private_bytes() if v in dropped else rnd.randbytes(32)
        shares = split_secret(secret, holders, threshold, rng)
        # As the server holds them: decoded from the holders' unmasking responses.
        held = {s.x: Share.from_bytes(s.to_bytes()) for s in shares if s.x in alive}
        (key_shares if v in dropped else seed_shares)[v] = held
    return {
        "session_id": session_id,
        "graph": graph,
        "alive": alive,
        "publics": publics,
        "seed_shares": seed_shares,
        "key_shares": key_shares,
    }


def timed(task: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = task()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def rates(total_bytes: int = 32 << 20) -> tuple[float, float]:
    """Best raw AES-128-CTR keystream and in-place uint32 add throughput, bytes/s."""
    from benchmarks.bench_scaling import add_rate, keystream_rate

    return keystream_rate(total_bytes, 3), add_rate(total_bytes, 3)


def bench(
    n: int, dim: int, dropout: float, degree: int, threshold: int, repeats: int, seed: int
) -> dict[str, Any]:
    built = time.perf_counter()
    r = build_round(n, degree, threshold, dropout, seed)
    build_s = time.perf_counter() - built
    best: dict[str, tuple[float, float]] = {}

    def keep(name: str, wall: float, cpu: float) -> None:
        old = best.get(name, (float("inf"), float("inf")))
        best[name] = (min(old[0], wall), min(old[1], cpu))

    masks = 0
    aes, add = rates()
    for _ in range(repeats):  # interleaved, best of N
        wall, cpu, rec = timed(
            lambda: reconstruct_all(r["seed_shares"], r["key_shares"], r["publics"], threshold)
        )
        keep("reconstruct", wall, cpu)
        recovered = cast(Reconstruction, rec)
        if recovered.failures:
            raise AssertionError(f"reconstruction failed: {recovered.failures[:3]}")
        wall, cpu, found = timed(
            functools.partial(
                removal_keys, r["session_id"], r["graph"], r["alive"], recovered, r["publics"]
            )
        )
        keep("keys", wall, cpu)
        keys = cast(list[tuple[bytes, bool]], found)
        masks = len(keys)
        total = np.zeros(dim, dtype=np.uint32)
        wall, cpu, _ = timed(functools.partial(MaskPRG(BITS).add_many, total, keys))
        keep("expand", wall, cpu)
    more = rates()
    aes, add = max(aes, more[0]), max(add, more[1])
    rate_limit = masks * dim * (4 / aes + 4 / add)
    unmask = tuple(sum(best[k][i] for k in ("reconstruct", "keys", "expand")) for i in (0, 1))
    secrets = len(r["seed_shares"]) + len(r["key_shares"])
    shares = sum(len(v) for v in r["seed_shares"].values()) + sum(
        len(v) for v in r["key_shares"].values()
    )
    return {
        "n": n,
        "dim": dim,
        "dropout": dropout,
        "k": degree,
        "t": threshold,
        "secrets": secrets,
        "shares": shares,
        "masks": masks,
        "build_s": build_s,
        "repeats": repeats,
        **{f"{k}_wall_s": v[0] for k, v in best.items()},
        **{f"{k}_cpu_s": v[1] for k, v in best.items()},
        "unmask_wall_s": unmask[0],
        "unmask_cpu_s": unmask[1],
        "rate_limit_s": rate_limit,
        "aes_gbps": aes / 1e9,
        "add_gbps": add / 1e9,
        "ratio_to_expand_cpu": unmask[1] / best["expand"][1],
        "ratio_to_rate_limit_cpu": unmask[1] / rate_limit,
    }


def report(row: dict[str, Any]) -> None:
    print(
        f"n = {row['n']}, D = {row['dim']}, {row['dropout']:.0%} dropped after sharing, "
        f"k = {row['k']}, t = {row['t']}: {row['secrets']} secrets from {row['shares']} shares, "
        f"{row['masks']} masks; best of {row['repeats']}"
    )
    print(f"{'step':<12} {'wall s':>9} {'cpu s':>9}")
    for name in ("reconstruct", "keys", "expand", "unmask"):
        print(f"{name:<12} {row[f'{name}_wall_s']:>9.4f} {row[f'{name}_cpu_s']:>9.4f}")
    print(
        f"rate limit {row['rate_limit_s']:.4f} s (AES-CTR {row['aes_gbps']:.2f} GB/s, "
        f"add {row['add_gbps']:.2f} GB/s)"
    )
    print(
        f"unmask / expand = {row['ratio_to_expand_cpu']:.2f}x (cpu); "
        f"unmask / rate limit = {row['ratio_to_rate_limit_cpu']:.2f}x (cpu)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--dropout", type=float, default=0.05)
    parser.add_argument("--degree", type=int, default=None, help="default: the finder's k")
    parser.add_argument("--threshold", type=int, default=None, help="default: the finder's t")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="n = 300, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="then cProfile one pass: top N"
    )
    args = parser.parse_args(argv)
    n = 300 if args.quick else args.n
    found = find_parameters(n, dropout_rate=max(args.dropout, 0.01))
    degree = args.degree or found.degree
    threshold = args.threshold or found.threshold
    row = bench(n, args.dim, args.dropout, degree, threshold, args.repeats, args.seed)
    if args.json:
        print(json.dumps(row))
    else:
        report(row)
    if args.profile:
        profile(n, args.dim, args.dropout, degree, threshold, args.seed, args.profile)
    return 0


def profile(
    n: int, dim: int, dropout: float, degree: int, threshold: int, seed: int, top: int
) -> None:
    """cProfile one unmasking pass (reconstruct, keys, expand); print the top by own time."""
    import cProfile
    import pstats

    r = build_round(n, degree, threshold, dropout, seed)

    def once() -> None:
        rec = reconstruct_all(r["seed_shares"], r["key_shares"], r["publics"], threshold)
        keys = removal_keys(r["session_id"], r["graph"], r["alive"], rec, r["publics"])
        MaskPRG(BITS).add_many(np.zeros(dim, dtype=np.uint32), keys)

    prof = cProfile.Profile()
    prof.runcall(once)
    pstats.Stats(prof).strip_dirs().sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    raise SystemExit(main())
