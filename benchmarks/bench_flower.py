"""Side by side: secagg vs Flower's SecAgg+ primitives, same n, k, t, D, dropout and bit width.

Flower (``flwr``) ships SecAgg+ as a server workflow
(``flwr/server/workflow/secure_aggregation/secaggplus_workflow.py``) and a client mod
(``flwr/client/mod/secure_aggregation/secaggplus_mod.py``) that run over its messaging stack.
:func:`run_flower` is our own in-process driver that performs, step by step, exactly the work
those two files do, calling Flower's own primitives, with the messaging replaced by direct
calls (as secagg's ``simulate`` does for secagg):

* stage 0 (setup): each client makes two EC key pairs (``generate_key_pairs``) and serialises
  them;
* stage 1 (share keys): each client draws a 32-byte self-mask seed, Shamir-shares it and its
  first private key to its ``num_shares`` neighbours (``create_shares``), derives a shared key
  with each neighbour (``generate_shared_key``) and Fernet-encrypts each share pair
  (``encrypt``); the server forwards the ciphertexts;
* stage 2 (collect masked vectors): each client decrypts its shares, adds its self mask and one
  pairwise mask per neighbour (``pseudo_rand_gen``, one ECDH + HKDF per neighbour) and reduces
  mod ``mod_range``; the server sums the masked vectors;
* stage 3 (unmask): each surviving client returns its shares; the server combines them
  (``combine_shares``), subtracts each survivor's self mask and cancels each dropped client's
  pairwise masks with every neighbour, exactly as the workflow does.

Not reproduced (they would only add to Flower's time): the quantisation of float updates
(both libraries are given the same integer vectors) and Flower's gRPC / message
serialisation. The neighbour ring is Flower's own construction (a shuffled ring with
``num_shares // 2`` neighbours on each side, self included).

The parent alternates a secagg child and a Flower child per configuration, each in a fresh
interpreter, so the two see the same machine load; ratios are end-to-end wall seconds of the
whole in-process round (all clients plus the server).

Flower's children run in the same interpreter as the parent (``make bench`` installs secagg
and Flower together in ``benchmarks/.venv``: secagg's generated code runs on Flower's protobuf
6.x); they import only Flower, NumPy and this file. Point them at another environment with
``SECAGG_BENCH_FLWR_PYTHON=/path/to/python``.

    python -m benchmarks flower [--quick]
    python -m benchmarks flower --app [--quick] [--timeout S]

``--app`` runs the other comparison, inside Flower's simulation engine: one Flower app secured
by Flower's ``SecAggPlusWorkflow``/``secaggplus_mod`` or by ``secagg.flower``, n = 10, 50, 100,
P = 10^5 and 10^6, 0% and 10% dropout (:mod:`benchmarks.bench_flower_app`).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_protocol import (
    RESULTS,
    child_main,
    finder_parameters,
    make_inputs,
    run_child,
    write_text,
)

FLOWER_PYTHON = os.environ.get("SECAGG_BENCH_FLWR_PYTHON", sys.executable)


def flower_available() -> bool:
    """Whether the Flower interpreter exists and imports flwr."""
    try:
        proc = subprocess.run(
            [FLOWER_PYTHON, "-c", "import flwr"], capture_output=True, timeout=120, check=False
        )
    except OSError:
        return False
    return proc.returncode == 0


def run_flower(
    n: int,
    dim: int,
    k: int,
    threshold: int,
    dropout: float,
    dropout_round: str,
    seed: int = 0,
) -> dict[str, Any]:
    """One SecAgg+ round with Flower's primitives in this process; timings and a sum check.

    ``k`` is the number of neighbours (Flower's ``num_shares`` is k + 1, self included).
    ``dropout_round`` is ``"masked-input"`` (the client shared its keys but never sends its
    masked vector) or ``"unmasking"`` (it sent the masked vector but never answers stage 3).
    """
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import (
        decrypt,
        encrypt,
        generate_shared_key,
    )
    from flwr.common.secure_aggregation.ndarrays_arithmetic import (
        parameters_addition,
        parameters_mod,
        parameters_subtraction,
    )
    from flwr.common.secure_aggregation.secaggplus_utils import (
        pseudo_rand_gen,
        share_keys_plaintext_concat,
        share_keys_plaintext_separate,
    )
    from flwr.supercore.primitives.asymmetric import (
        bytes_to_private_key,
        bytes_to_public_key,
        generate_key_pairs,
        private_key_to_bytes,
        public_key_to_bytes,
    )

    bits = 32
    mod_range = 1 << bits
    inputs = make_inputs(n, dim, seed)
    rng = random.Random(seed)
    nids = list(range(1, n + 1))
    num_shares = min(k + 1, n)
    if num_shares < n and num_shares % 2 == 0:  # the workflow makes an even count odd
        num_shares += 1
    shuffled = list(nids)
    rng.shuffle(shuffled)
    half = num_shares >> 1
    neighbours = {
        nid: {shuffled[(i + off) % n] for off in range(-half, half + 1)}
        for i, nid in enumerate(shuffled)
    }
    dropped = set(rng.sample(nids, round(dropout * n)))
    drop_masked = dropped if dropout_round == "masked-input" else set()
    drop_unmask = dropped if dropout_round == "unmasking" else set()
    shape = [(dim,)]

    client_t: dict[str, float] = {}
    server_t: dict[str, float] = {}
    state: dict[int, dict[str, Any]] = {nid: {} for nid in nids}
    t_start = time.perf_counter()

    # Stage 0: setup, two key pairs per client.
    t0 = time.perf_counter()
    for nid in nids:
        st = state[nid]
        sk1, pk1 = generate_key_pairs()
        sk2, pk2 = generate_key_pairs()
        st["sk1"], st["pk1"] = private_key_to_bytes(sk1), public_key_to_bytes(pk1)
        st["sk2"], st["pk2"] = private_key_to_bytes(sk2), public_key_to_bytes(pk2)
    client_t["setup"] = time.perf_counter() - t0
    publickeys = {nid: (state[nid]["pk1"], state[nid]["pk2"]) for nid in nids}

    # Stage 1: share keys.
    t0 = time.perf_counter()
    outgoing: dict[int, tuple[list[int], list[bytes]]] = {}
    for nid in nids:
        st = state[nid]
        st["public_keys"] = {v: publickeys[v] for v in neighbours[nid]}
        st["rd_seed"] = rng.randbytes(32)
        b_shares = create_shares(st["rd_seed"], threshold, num_shares)
        sk1_shares = create_shares(st["sk1"], threshold, num_shares)
        st["seed_shares"], st["sk1_shares"], st["ss2"] = {}, {}, {}
        dsts, cts = [], []
        for idx, (v, (_, pk2)) in enumerate(st["public_keys"].items()):
            if v == nid:
                st["seed_shares"][nid] = b_shares[idx]
                st["sk1_shares"][nid] = sk1_shares[idx]
                continue
            shared = generate_shared_key(bytes_to_private_key(st["sk2"]), bytes_to_public_key(pk2))
            st["ss2"][v] = shared
            plaintext = share_keys_plaintext_concat(nid, v, b_shares[idx], sk1_shares[idx])
            dsts.append(v)
            cts.append(encrypt(shared, plaintext))
        outgoing[nid] = (dsts, cts)
    client_t["share-keys"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fwd: dict[int, tuple[list[int], list[bytes]]] = {nid: ([], []) for nid in nids}
    for src, (dsts, cts) in outgoing.items():
        for dst, ct in zip(dsts, cts, strict=True):
            fwd[dst][0].append(src)
            fwd[dst][1].append(ct)
    server_t["share-keys"] = time.perf_counter() - t0

    # Stage 2: masked vectors.
    masked: dict[int, list[np.ndarray]] = {}
    t0 = time.perf_counter()
    for nid in nids:
        if nid in drop_masked:
            continue
        st = state[nid]
        available = []
        for src, ct in zip(*fwd[nid], strict=True):
            actual_src, dst, seed_share, sk1_share = share_keys_plaintext_separate(
                decrypt(st["ss2"][src], ct)
            )
            assert actual_src == src, (actual_src, src)
            assert dst == nid, (dst, nid)
            available.append(src)
            st["seed_shares"][src] = seed_share
            st["sk1_shares"][src] = sk1_share
        vec = [inputs[nid - 1].astype(np.int64)]
        vec = parameters_addition(vec, pseudo_rand_gen(st["rd_seed"], mod_range, shape))
        for v in available:
            shared = generate_shared_key(
                bytes_to_private_key(st["sk1"]), bytes_to_public_key(st["public_keys"][v][0])
            )
            pairwise = pseudo_rand_gen(shared, mod_range, shape)
            if nid > v:
                vec = parameters_addition(vec, pairwise)
            else:
                vec = parameters_subtraction(vec, pairwise)
        masked[nid] = parameters_mod(vec, mod_range)
    client_t["masked-input"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    total: list[np.ndarray] | None = None
    for vec in masked.values():
        total = vec if total is None else parameters_addition(total, vec)
    assert total is not None
    total = parameters_mod(total, mod_range)
    server_t["masked-input"] = time.perf_counter() - t0
    active = set(masked)
    dead = set(nids) - active

    # Stage 3: unmask.
    t0 = time.perf_counter()
    collected: dict[int, list[bytes]] = {nid: [] for nid in nids}
    responders = 0
    for nid in sorted(active):
        if nid in drop_unmask:
            continue
        st = state[nid]
        nb = neighbours[nid]
        act, dd = list(nb & active), list(nb & dead)
        shares = [st["seed_shares"][v] for v in act] + [st["sk1_shares"][v] for v in dd]
        for owner, share in zip(act + dd, shares, strict=True):
            collected[owner].append(share)
        responders += 1
    client_t["unmasking"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for nid, share_list in collected.items():
        if len(share_list) < threshold:
            raise RuntimeError(f"Flower: too few shares for {nid}")
        secret = combine_shares(share_list)
        if nid in active:
            total = parameters_subtraction(total, pseudo_rand_gen(secret, mod_range, shape))
        else:
            for v in neighbours[nid] - {nid}:
                shared = generate_shared_key(
                    bytes_to_private_key(secret), bytes_to_public_key(publickeys[v][0])
                )
                pairwise = pseudo_rand_gen(shared, mod_range, shape)
                if nid > v:
                    total = parameters_addition(total, pairwise)
                else:
                    total = parameters_subtraction(total, pairwise)
    total = parameters_mod(total, mod_range)
    server_t["unmasking"] = time.perf_counter() - t0
    wall = time.perf_counter() - t_start

    plain = np.zeros(dim, dtype=np.int64)
    for nid in active:
        plain += inputs[nid - 1]
    ok = bool(np.array_equal(total[0] % mod_range, plain % mod_range))
    per_client = (
        client_t["setup"] / n
        + client_t["share-keys"] / n
        + client_t["masked-input"] / max(1, n - len(drop_masked))
        + client_t["unmasking"] / max(1, responders)
    )
    return {
        "impl": "flower",
        "n": n,
        "dim": dim,
        "k": num_shares - 1,
        "t": threshold,
        "dropped": len(dropped),
        "wall_s": wall,
        "client_s": per_client,
        "server_s": sum(server_t.values()),
        "client_rounds": client_t,
        "server_rounds": server_t,
        "ok": ok,
    }


def side_by_side(quick: bool, repeats: int, sparse_only: bool = False) -> list[dict[str, Any]]:
    """Alternate secagg and Flower children per configuration; return one row each."""
    if sparse_only and not quick:
        configs = [(100, 100_000, 20, 0.0), (100, 100_000, 20, 0.1)]
    elif quick:
        configs = [(12, 1000, None, 0.0), (12, 1000, 4, 0.1)]
    else:
        configs = [
            (100, 100_000, 99, 0.0),
            (100, 100_000, 99, 0.1),
            (100, 100_000, 20, 0.0),
            (100, 100_000, 20, 0.1),
        ]
    rows = []
    for n, dim, k, dropout in configs:
        degree, threshold = finder_parameters(n, dropout, k)
        params = {
            "n": n,
            "dim": dim,
            "k": degree,
            "threshold": threshold,
            "dropout": dropout,
            "dropout_round": "masked-input",
        }
        sec_runs, flw_runs = [], []
        flower_repeats = 1 if (degree >= 50 and not quick) else repeats
        for rep in range(max(repeats, flower_repeats)):
            sec_runs.append(run_child("bench_protocol", {**params, "seed": rep}))
            if rep < flower_repeats:
                flw_runs.append(
                    run_child("bench_flower", {**params, "seed": rep}, python=FLOWER_PYTHON)
                )
            print(
                f"  n={n} D={dim} k={degree} t={threshold} drop={dropout:.0%} rep {rep}: "
                f"secagg {sec_runs[-1]['wall_s']:.2f}s flower {flw_runs[-1]['wall_s']:.2f}s",
                flush=True,
            )
        sec = min(sec_runs, key=lambda r: r["wall_s"])
        flw = min(flw_runs, key=lambda r: r["wall_s"])
        rows.append(
            {
                "n": n,
                "dim": dim,
                "k": degree,
                "t": threshold,
                "dropout": dropout,
                "secagg": sec,
                "flower": flw,
                "speedup": flw["wall_s"] / sec["wall_s"],
            }
        )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The side-by-side Markdown table."""
    out = [
        "| n | D | k | t | dropout | secagg wall s | Flower wall s | speed-up | "
        "secagg client s | Flower client s | secagg server s | Flower server s | "
        "secagg RSS MiB | Flower RSS MiB | sums ok |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        s, f = r["secagg"], r["flower"]
        k = "full" if r["k"] == r["n"] - 1 else str(r["k"])
        out.append(
            f"| {r['n']} | {r['dim']:,} | {k} | {r['t']} | {r['dropout']:.0%} | "
            f"{s['wall_s']:.2f} | {f['wall_s']:.2f} | **{r['speedup']:.1f}x** | "
            f"{s['client_s']:.3f} | {f['client_s']:.3f} | {s['server_s']:.3f} | "
            f"{f['server_s']:.3f} | {s['peak_rss_mb']:.0f} | {f['peak_rss_mb']:.0f} | "
            f"{'yes' if s['ok'] and f['ok'] else 'NO'} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, run_flower):
        return 0
    if "--app" in argv:
        from benchmarks import bench_flower_app

        return bench_flower_app.main([a for a in argv if a != "--app"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--sparse-only",
        action="store_true",
        help="only the k = 20 configurations (results go to flower_k20.*)",
    )
    args = parser.parse_args(argv)
    if not flower_available():
        print(
            f"flwr is not importable by {FLOWER_PYTHON}; `make bench` installs it in "
            "benchmarks/.venv with secagg (benchmarks/requirements.txt)"
        )
        return 2
    rows = side_by_side(args.quick, args.repeats, args.sparse_only)
    table = render(rows)
    note = (
        "End-to-end wall seconds of one whole in-process round (all clients and the server), "
        "best of the runs, secagg and Flower 1.42 alternated in fresh subprocesses. "
        "Dropout: clients that shared keys but never sent their masked input. "
        "'client s' is the mean per-client time summed over rounds; RSS is the whole "
        "simulation process (all n clients' inputs included).\n\n"
    )
    print(table)
    if not args.quick:
        stem = "flower_k20" if args.sparse_only else "flower"
        write_text(args.out / f"{stem}.md", "# secagg vs Flower SecAgg+\n\n" + note + table)
        write_text(args.out / f"{stem}.json", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
