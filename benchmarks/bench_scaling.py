"""Scaling series, the physical limit, the n = 5000 run and the ``--workers`` speed-up.

* ``limits``: in each child, raw AES-128-CTR keystream throughput and NumPy in-place add
  throughput are measured right before the round; the client's masked-input time is compared
  with the time the limit allows for its work ((k + 1) * D words of keystream plus as many
  adds) and the server's unmasking time with the limit for its work (one self mask per
  survivor plus one pairwise mask per (dropped client, surviving neighbour) pair).
* ``scaling``: n in {10, 100, 1000, 5000} at D = 10^4 and 10^5 (finder's k), D in
  {10^4 .. 10^7} at n = 100, dropout in {0, 10%, 30%}; per-client and server seconds, server
  memory, bytes sent and the communication expansion factor; Markdown table and PNG plots.
* ``big``: n = 5000, D = 10^4, 10% dropout, in-process.
* ``workers``: process-parallel server unmasking (vector split across processes) and client
  simulation (clients split across processes), serial vs ``--workers N``, best of 5,
  interleaved.

    python -m benchmarks scaling|limits|big|workers [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from benchmarks.bench_protocol import (
    DESIGN_DROPOUT,
    RESULTS,
    child_main,
    finder_parameters,
    machine,
    run_child,
    run_secagg,
    write_text,
)

CHUNK = 256 * 1024


# ---------------------------------------------------------------------------------------------
# The physical limit


def keystream_rate(total_bytes: int = 64 << 20, repeats: int = 5) -> float:
    """Best raw AES-128-CTR keystream throughput in bytes/s (update_into, reused buffer)."""
    zeros = bytes(CHUNK)
    buf = bytearray(CHUNK)
    best = float("inf")
    for _ in range(repeats):
        enc = Cipher(algorithms.AES(os.urandom(16)), modes.CTR(bytes(16))).encryptor()
        start = time.perf_counter()
        for _ in range(total_bytes // CHUNK):
            enc.update_into(zeros, buf)
        best = min(best, time.perf_counter() - start)
    return total_bytes / best


def add_rate(total_bytes: int = 64 << 20, repeats: int = 5) -> float:
    """Best NumPy in-place uint32 add throughput in bytes/s, one 256 KiB chunk into another."""
    words = CHUNK // 4
    acc = np.zeros(words, dtype=np.uint32)
    ks = np.ones(words, dtype=np.uint32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(total_bytes // CHUNK):
            np.add(acc, ks, out=acc)
        best = min(best, time.perf_counter() - start)
    return total_bytes / best


def server_mask_count(result_row: dict[str, Any]) -> int:
    """Masks the server expands: one per survivor plus one per (dropped, surviving neighbour)."""
    return int(result_row["server_masks"])


def run_limits(
    n: int, dim: int, k: int, threshold: int, dropout: float, dropout_round: str, seed: int = 0
) -> dict[str, Any]:
    """A timed secagg round with the physical limit measured in the same process."""
    aes = keystream_rate()
    add = add_rate()
    row = run_secagg(n, dim, k, threshold, dropout, dropout_round, seed)
    aes = max(aes, keystream_rate())
    add = max(add, add_rate())
    per_word = 4 / aes + 4 / add  # seconds per word: its keystream and its add
    row["aes_gbps"] = aes / 1e9
    row["add_gbps"] = add / 1e9
    row["client_limit_s"] = (k + 1) * dim * per_word
    row["server_limit_s"] = row["server_masks"] * dim * per_word
    return row


def limits(quick: bool) -> list[dict[str, Any]]:
    """Client and server time as a fraction of the physical limit, at D = 10^6."""
    n, dim = (20, 20_000) if quick else (100, 1_000_000)
    k, t = finder_parameters(n, DESIGN_DROPOUT, None)
    rows = []
    for dropout in (0.0, 0.1):
        runs = [
            run_child(
                "bench_scaling",
                {
                    "n": n,
                    "dim": dim,
                    "k": k,
                    "threshold": t,
                    "dropout": dropout,
                    "dropout_round": "masked-input",
                    "seed": rep,
                },
            )
            for rep in range(1 if quick else 2)
        ]
        row = min(runs, key=lambda r: r["client_masked_input_s"] + r["server_remove_masks_s"])
        print(
            f"  n={n} D={dim} k={k} drop={dropout:.0%}: AES {row['aes_gbps']:.2f} GB/s add "
            f"{row['add_gbps']:.2f} GB/s; client {row['client_masked_input_s']:.4f}s vs limit "
            f"{row['client_limit_s']:.4f}s; server mask removal "
            f"{row['server_remove_masks_s']:.4f}s "
            f"(unmasking round {row['server_unmask_s']:.4f}s) vs limit "
            f"{row['server_limit_s']:.4f}s ({row['server_masks']} masks)",
            flush=True,
        )
        rows.append(row)
    return rows


def render_limits(rows: list[dict[str, Any]]) -> str:
    out = [
        "| n | D | k | dropout | AES-CTR GB/s | add GB/s | client masked-input s | client "
        "limit s | client / limit | server masks | server mask removal s | server limit s | "
        "removal / limit | server unmasking round s (incl. Shamir) | round / limit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lim = r["server_limit_s"]
        out.append(
            f"| {r['n']} | {r['dim']:,} | {r['k']} | {r['dropout']:.0%} | {r['aes_gbps']:.2f} | "
            f"{r['add_gbps']:.2f} | {r['client_masked_input_s']:.4f} | "
            f"{r['client_limit_s']:.4f} | "
            f"**{r['client_masked_input_s'] / r['client_limit_s']:.2f}x** | {r['server_masks']} | "
            f"{r['server_remove_masks_s']:.4f} | {lim:.4f} | "
            f"**{r['server_remove_masks_s'] / lim:.2f}x** | {r['server_unmask_s']:.4f} | "
            f"{r['server_unmask_s'] / lim:.2f}x |"
        )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Scaling series


def scaling_points(quick: bool) -> list[tuple[str, int, int, float, bool]]:
    """(series, n, D, dropout, measure server memory) points."""
    if quick:
        return [
            ("n", 10, 1000, 0.1, True),
            ("n", 20, 1000, 0.1, True),
            ("D", 10, 2000, 0.1, False),
            ("dropout", 20, 1000, 0.2, False),
        ]
    pts: list[tuple[str, int, int, float, bool]] = []
    for dim in (10_000, 100_000):
        for n in (10, 100, 1000):
            pts.append(("n", n, dim, 0.1, True))
    pts.append(("n", 5000, 10_000, 0.1, True))
    for dim in (10_000, 100_000, 1_000_000, 10_000_000):
        pts.append(("D", 100, dim, 0.1, dim <= 1_000_000))
    for dropout in (0.0, 0.1, 0.3):
        pts.append(("dropout", 100, 100_000, dropout, False))
    pts.append(("n", 5000, 100_000, 0.1, False))  # last: the longest; skipped if out of time
    return pts


def scaling(quick: bool, budget_s: float) -> list[dict[str, Any]]:
    rows = []
    start = time.perf_counter()
    for series, n, dim, dropout, memory in scaling_points(quick):
        if time.perf_counter() - start > budget_s:
            print(f"  time budget spent: skipping {series} n={n} D={dim}", flush=True)
            continue
        k, t = finder_parameters(n, max(DESIGN_DROPOUT, dropout), None)
        params = {
            "n": n,
            "dim": dim,
            "k": k,
            "threshold": t,
            "dropout": dropout,
            "dropout_round": "masked-input",
        }
        try:
            row = run_child("bench_protocol", params)
        except RuntimeError as exc:  # e.g. the round aborted: record it and go on
            print(
                f"  [{series}] n={n} D={dim} k={k} t={t} drop={dropout:.0%}: FAILED "
                f"{str(exc).strip().splitlines()[-1]}",
                flush=True,
            )
            continue
        row["series"] = series
        if memory:
            mem = run_child("bench_protocol", {**params, "memory": True, "plain": False})
            row["server_held_bytes"] = mem["server_held_bytes"]
        print(
            f"  [{series}] n={n} D={dim} k={k} t={t} drop={dropout:.0%}: client "
            f"{row['client_s']:.4f}s server {row['server_s']:.3f}s wall {row['wall_s']:.1f}s "
            f"held {row.get('server_held_bytes') or 0:,} B ok={row['ok']}",
            flush=True,
        )
        rows.append(row)
    return rows


def render_scaling(rows: list[dict[str, Any]]) -> str:
    out = [
        "| series | n | D | k | t | dropout | client s | server s | wall s | server held MiB | "
        "process RSS MiB | bytes sent / client | server bytes sent | expansion | ok |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        held = r.get("server_held_bytes")
        out.append(
            f"| {r['series']} | {r['n']} | {r['dim']:,} | {r['k']} | {r['t']} | "
            f"{r['dropout']:.0%} | {r['client_s']:.4f} | {r['server_s']:.3f} | "
            f"{r['wall_s']:.2f} | {held / 2**20 if held else float('nan'):.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['client_bytes_sent_mean']:,.0f} | "
            f"{r['server_bytes_sent']:,} | {r['expansion_client']:.3f} | "
            f"{'yes' if r['ok'] else 'NO'} |"
        )
    return "\n".join(out) + "\n"


def plot_scaling(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """PNG plots of the series; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for dim, style in ((10_000, "o"), (100_000, "s")):
        pts = sorted((r["n"], r) for r in rows if r["series"] == "n" and r["dim"] == dim)
        if pts:
            ns = [p[0] for p in pts]
            ax.plot(ns, [p[1]["client_s"] for p in pts], style, ls="-", label=f"client, D={dim:,}")
            ax.plot(
                ns,
                [p[1]["server_s"] for p in pts],
                style,
                mfc="none",
                ls="--",
                label=f"server, D={dim:,}",
            )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="clients n (finder's k, 10% dropout)",
        ylabel="seconds",
        title="Time vs number of clients",
    )
    ax.legend(fontsize=8)
    ax = axes[1]
    pts = sorted((r["dim"], r) for r in rows if r["series"] == "D")
    if pts:
        ds = [p[0] for p in pts]
        ax.plot(ds, [p[1]["client_s"] for p in pts], "o-", label="client")
        ax.plot(ds, [p[1]["server_s"] for p in pts], "s--", label="server")
        ax.plot(ds, [p[1]["plain_sum_s"] for p in pts], "^:", label="plain sum (all inputs)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="model size D (n=100, 10% dropout)",
        ylabel="seconds",
        title="Time vs model size",
    )
    ax.legend(fontsize=8)
    ax = axes[2]
    for dim, style in ((10_000, "o-"), (100_000, "s-")):
        pts = sorted(
            (r["n"], r)
            for r in rows
            if r["series"] == "n" and r["dim"] == dim and r.get("server_held_bytes")
        )
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1]["server_held_bytes"] / 2**20 for p in pts],
                style,
                label=f"server session, D={dim:,}",
            )
            ax.axhline(dim * 4 / 2**20, color="grey", lw=0.8, ls=":")
    ax.set(
        xscale="log",
        xlabel="clients n",
        ylabel="MiB",
        title="Server memory held at unmasking (dotted: D words)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def plot_flower(out: Path) -> Path | None:
    """Bar chart of secagg vs Flower from flower.json, if present."""
    import json

    src = out / "flower.json"
    if not src.exists():
        return None
    rows = json.loads(src.read_text())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        f"k={'full' if r['k'] == r['n'] - 1 else r['k']}\n{r['dropout']:.0%} drop" for r in rows
    ]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, [r["flower"]["wall_s"] for r in rows], 0.4, label="Flower 1.42 SecAgg+")
    ax.bar(x + 0.2, [r["secagg"]["wall_s"] for r in rows], 0.4, label="secagg")
    for i, r in enumerate(rows):
        ax.text(i, r["flower"]["wall_s"], f"{r['speedup']:.0f}x", ha="center", va="bottom")
    ax.set(
        yscale="log",
        ylabel="seconds, whole round in-process",
        title="n=100, D=10^5, 32-bit: secagg vs Flower SecAgg+",
    )
    ax.set_xticks(x, labels)
    ax.legend()
    fig.tight_layout()
    path = out / "flower.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# --workers


def workers_bench(quick: bool, workers: int) -> dict[str, Any]:
    """Serial vs process-parallel mask expansion, best of 5 interleaved."""
    from secagg.crypto.prg import MaskPRG
    from secagg.crypto.ring import ring_sum
    from secagg.simulation.parallel import MaskPool

    if quick:
        n, dim, k, drop = 20, 20_000, 6, 0.1
    else:
        n, dim, k, drop = 1000, 100_000, 36, 0.1
    survivors = round(n * (1 - drop))
    server_keys = [(os.urandom(16), True) for _ in range(survivors)]
    server_keys += [(os.urandom(16), bool(i % 2)) for i in range(round(n * drop) * k)]
    cn = 20 if quick else 100
    client_rows = [
        np.random.default_rng(i).integers(0, 1 << 16, dim, dtype=np.uint32) for i in range(cn)
    ]
    client_keys = [[(os.urandom(16), bool(j % 2)) for j in range(k + 1)] for _ in range(cn)]
    best = {
        "server_serial": float("inf"),
        "server_parallel": float("inf"),
        "clients_serial": float("inf"),
        "clients_parallel": float("inf"),
        "clients_sum_parallel": float("inf"),
    }
    with MaskPool(workers) as pool:
        pool.warm_up()
        for _ in range(5):
            acc = np.zeros(dim, dtype=np.uint32)
            t0 = time.perf_counter()
            MaskPRG(32).add_many(acc, server_keys)
            best["server_serial"] = min(best["server_serial"], time.perf_counter() - t0)
            acc2 = np.zeros(dim, dtype=np.uint32)
            t0 = time.perf_counter()
            pool.add_many(acc2, 32, server_keys)
            best["server_parallel"] = min(best["server_parallel"], time.perf_counter() - t0)
            assert np.array_equal(acc, acc2)
            t0 = time.perf_counter()
            prg = MaskPRG(32)
            serial = []
            for row, keys in zip(client_rows, client_keys, strict=True):
                out = row.copy()
                prg.add_many(out, keys)
                serial.append(out)
            best["clients_serial"] = min(best["clients_serial"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            par = pool.mask_inputs(client_rows, client_keys, 32)
            best["clients_parallel"] = min(best["clients_parallel"], time.perf_counter() - t0)
            assert all(np.array_equal(a, b) for a, b in zip(serial, par, strict=True))
            t0 = time.perf_counter()
            summed = pool.masked_sum(client_rows, client_keys, 32)
            best["clients_sum_parallel"] = min(
                best["clients_sum_parallel"], time.perf_counter() - t0
            )
            assert np.array_equal(summed, ring_sum(serial, 32))
    res = {
        "workers": workers,
        "server": {"n": n, "dim": dim, "k": k, "dropout": drop, "masks": len(server_keys)},
        "clients": {"clients": cn, "dim": dim, "masks_each": k + 1},
        **best,
        "server_speedup": best["server_serial"] / best["server_parallel"],
        "clients_speedup": best["clients_serial"] / best["clients_parallel"],
        "clients_sum_speedup": best["clients_serial"] / best["clients_sum_parallel"],
        "loadavg_1min": os.getloadavg()[0],
    }
    print(
        f"  server unmasking ({len(server_keys)} masks x D={dim:,}): serial "
        f"{best['server_serial']:.3f}s, {workers} workers {best['server_parallel']:.3f}s -> "
        f"{res['server_speedup']:.2f}x; client simulation ({cn} clients x {k + 1} masks): "
        f"serial {best['clients_serial']:.3f}s, parallel {best['clients_parallel']:.3f}s -> "
        f"{res['clients_speedup']:.2f}x, parallel with per-worker sums "
        f"{best['clients_sum_parallel']:.3f}s -> {res['clients_sum_speedup']:.2f}x "
        f"(load avg {res['loadavg_1min']:.2f})",
        flush=True,
    )
    return res


# ---------------------------------------------------------------------------------------------


def _child_runner(**params: Any) -> dict[str, Any]:
    return run_limits(**params)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, _child_runner):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", nargs="?", default="scaling", choices=["scaling", "limits", "big", "workers"]
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--budget",
        type=float,
        default=3600.0,
        help="seconds after which remaining scaling points are skipped",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    out: Path = args.out
    save = not args.quick
    if args.what == "limits":
        rows = limits(args.quick)
        table = render_limits(rows)
        print(table)
        if save:
            write_text(out / "limits.md", "# Physical limit\n\n" + machine() + "\n\n" + table)
            write_text(out / "limits.json", rows)
    elif args.what == "big":
        n, dim = (200, 1000) if args.quick else (5000, 10_000)
        k, t = finder_parameters(n, DESIGN_DROPOUT, None)
        row = run_child(
            "bench_protocol",
            {
                "n": n,
                "dim": dim,
                "k": k,
                "threshold": t,
                "dropout": 0.1,
                "dropout_round": "masked-input",
            },
        )
        print(
            f"  n={n} D={dim} k={k} t={t} 10% dropout: wall {row['wall_s']:.1f}s, client "
            f"{row['client_s']:.4f}s, server {row['server_s']:.2f}s, RSS "
            f"{row['peak_rss_mb']:.0f} MiB, included {n - row['dropped']}, ok={row['ok']}"
        )
        if save:
            write_text(out / "big.json", row)
    elif args.what == "workers":
        res = workers_bench(args.quick, args.workers)
        if save:
            write_text(out / "workers.json", res)
    else:
        rows = scaling(args.quick, args.budget)
        table = render_scaling(rows)
        print(table)
        if save:
            write_text(out / "scaling.md", "# Scaling\n\n" + machine() + "\n\n" + table)
            write_text(out / "scaling.json", rows)
            plot_scaling(rows, out)
            plot_flower(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
