"""One whole secagg round in-process vs the plain sum of the same inputs (issue 3's table).

For each (n, D, k) configuration and dropout (0% and 10%), a fresh subprocess runs
``secagg.simulate`` and the plain sum of the same inputs and reports per-client seconds (mean
per client, summed over rounds), server seconds (summed over rounds), end-to-end wall seconds,
bytes sent, whether the total equals the plain sum of the included inputs, the peak RSS of the
whole simulation process (it holds all n inputs and, for one round, all n masked inputs), and
the memory the server session itself holds when the unmasking round starts (tracemalloc, in a
separate untimed child).

Dropout "after the masked-input round" is run in the two readings PROTOCOL.md allows:

* ``masked-input``: the client shared its keys but never sends its masked input; the server
  must recover its mask key and cancel one pairwise mask per surviving neighbour (the
  expensive case for the server);
* ``unmasking``: the client sent its masked input (it is in the total) but never answers the
  unmasking round; the server recovers its self-mask seed from the others' shares.

    python -m benchmarks protocol [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BITS = 32
DESIGN_DROPOUT = 0.10  # the finder is asked for k, t tolerating this dropout rate
CORRUPT_RATE = 0.05

# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by bench_flower and bench_scaling)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(
    module: str, params: dict[str, Any], *, python: str | None = None, timeout: float = 7200.0
) -> dict[str, Any]:
    """``python -m benchmarks.<module> --child JSON`` in a fresh interpreter; its JSON result.

    ``python`` is the interpreter (default: this one; ``SECAGG_BENCH_FLWR_PYTHON`` may name
    another for the Flower children).
    """
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [python or sys.executable, "-m", f"benchmarks.{module}", "--child", json.dumps(params)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmark child {module} {params} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_main(argv: list[str], runner: Any) -> bool:
    """If ``argv`` is ``--child JSON``: run ``runner(**params)``, print its JSON, return True."""
    if len(argv) >= 2 and argv[0] == "--child":
        params = json.loads(argv[1])
        result = runner(**params)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return True
    return False


def write_text(path: Path, content: Any) -> None:
    """Write a string (or JSON for anything else) to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(content, str):
        content = json.dumps(content, indent=1, default=str) + "\n"
    path.write_text(content)


def make_inputs(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """n x D uint32 inputs below 2^16 (so sums of up to 2^16 clients fit in 32 bits)."""
    return np.random.default_rng(seed).integers(0, 1 << 16, size=(n, dim), dtype=np.uint32)


def finder_parameters(n: int, dropout: float, k: int | None) -> tuple[int, int]:
    """(k, t): the finder's choice for n at the design dropout, or the smallest t for a given k."""
    from secagg.graph import find_parameters, threshold_bounds

    if k is None:
        found = find_parameters(
            n, dropout_rate=DESIGN_DROPOUT, corrupt_rate=CORRUPT_RATE, mode="semi-honest"
        )
        return int(found.degree), int(found.threshold)
    k = min(k, n - 1)
    return k, int(threshold_bounds(k, "semi-honest")[0])


def machine() -> str:
    """A one-line description of this machine."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores visible (shared with other jobs), {mem:.0f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}"
    )


# ---------------------------------------------------------------------------------------------
# The secagg child


def _server_steps() -> Any:
    """An observer of the server's two unmasking steps (Shamir reconstruction of the secrets,
    removal of the masks from the running sum): seconds in ``.spent``; nothing is patched."""
    from secagg.protocol.observer import RoundObserver

    class ServerSteps(RoundObserver):
        def __init__(self) -> None:
            self.spent = {"reconstruct": 0.0, "remove-masks": 0.0}
            self.began = 0.0

        def server_begin(self, round_: Any, step: str) -> None:
            self.began = time.perf_counter()

        def server_end(self, round_: Any, step: str) -> None:
            if step in self.spent:
                self.spent[step] += time.perf_counter() - self.began

    return ServerSteps()


def run_secagg(
    n: int,
    dim: int,
    k: int,
    threshold: int,
    dropout: float,
    dropout_round: str = "masked-input",
    seed: int = 0,
    memory: bool = False,
    plain: bool = True,
) -> dict[str, Any]:
    """One ``secagg.simulate`` round in this process, with timings and a check of the total.

    With ``memory=True`` the run is traced (tracemalloc) and reports the bytes the server
    session holds when the unmasking round starts (timings are then not meaningful).
    """
    import secagg

    inputs = make_inputs(n, dim, seed)
    server_held: list[int] = []

    def progress(round_name: str, _clients: int) -> None:
        if memory and round_name == "unmasking":
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, "*secagg/protocol/server/*")]
            )
            server_held.append(sum(stat.size for stat in snap.statistics("filename")))

    steps = _server_steps()
    if memory:
        tracemalloc.start(1)
    start = time.perf_counter()
    result = secagg.simulate(
        inputs,
        bits=BITS,
        degree=k,
        threshold=threshold,
        dropout=dropout,
        dropout_round=dropout_round,
        seed=seed,
        allow_unsafe=True,
        progress=progress,
        observer=steps,
    )
    wall = time.perf_counter() - start
    if memory:
        tracemalloc.stop()
    plain_s = 0.0
    ok = True
    if plain:
        t0 = time.perf_counter()
        expected = result.plain_total(inputs)
        plain_s = time.perf_counter() - t0
        ok = bool(np.array_equal(result.total, expected))
    # The masks the server expands: one self mask per survivor, one pairwise mask per
    # (client whose mask key was recovered, surviving neighbour).
    from secagg.graph import NeighbourGraph

    graph = NeighbourGraph(result.config.graph_seed, range(1, n + 1), result.config.degree)
    alive = {i + 1 for i in result.included}
    recovered = [i + 1 for i, d in result.dropped.items() if d.round.label == "masked-input"]
    server_masks = len(alive) + sum(1 for v in recovered for w in graph.neighbours(v) if w in alive)
    timings = {
        name: {
            "clients_total": t.clients_total,
            "client_max": t.client_max,
            "client_mean": t.client_mean,
            "server": t.server,
            "clients": t.clients,
        }
        for name, t in result.timings.items()
    }
    # Mean per participating client per round; the unmasking round's count also includes the
    # delivery of RoundComplete, so its total is divided by the number of survivors instead.
    client_s = sum(
        t.clients_total / max(1, len(result.included)) if name == "unmasking" else t.client_mean
        for name, t in result.timings.items()
    )
    masking = result.timings.get("masked-input")
    client_max_s = sum(t.client_max for t in result.timings.values())
    server_s = sum(t.server for t in result.timings.values())
    sent = list(result.client_bytes_sent)
    survivors = result.included
    raw = dim * 4
    return {
        "impl": "secagg",
        "n": n,
        "dim": dim,
        "k": k,
        "t": threshold,
        "dropout": dropout,
        "dropout_round": dropout_round,
        "dropped": n - len(survivors),
        "wall_s": wall,
        "client_s": client_s,
        "client_max_s": client_max_s,
        "server_s": server_s,
        "client_masked_input_s": masking.client_mean if masking else 0.0,
        "server_unmask_s": result.timings["unmasking"].server
        if "unmasking" in result.timings
        else 0.0,
        "clients_total_s": sum(t.clients_total for t in result.timings.values()),
        "plain_sum_s": plain_s,
        "timings": timings,
        "client_bytes_sent_mean": float(np.mean([sent[i] for i in survivors])) if survivors else 0,
        "server_bytes_sent": result.server_bytes_sent,
        "expansion_client": (float(np.mean([sent[i] for i in survivors])) / raw)
        if survivors
        else 0,
        "server_held_bytes": server_held[0] if server_held else None,
        "server_masks": server_masks,
        "server_reconstruct_s": steps.spent["reconstruct"],
        "server_remove_masks_s": steps.spent["remove-masks"],
        "dropped_rounds": sorted({d.round.label for d in result.dropped.values()}),
        "ok": ok,
    }


# ---------------------------------------------------------------------------------------------
# Issue 3's table

ISSUE3 = [(100, 100_000, 99), (100, 1_000_000, None), (1000, 100_000, None)]
ISSUE3_QUICK = [(10, 1000, 9), (20, 2000, None)]


def issue3_rows(quick: bool, rounds: tuple[str, ...]) -> list[dict[str, Any]]:
    """One timed child (and one traced child for server memory) per configuration."""
    rows = []
    for n, dim, k in ISSUE3_QUICK if quick else ISSUE3:
        degree, threshold = finder_parameters(n, DESIGN_DROPOUT, k)
        for dropout, dropout_round in [(0.0, "masked-input")] + [(0.1, r) for r in rounds]:
            params = {
                "n": n,
                "dim": dim,
                "k": degree,
                "threshold": threshold,
                "dropout": dropout,
                "dropout_round": dropout_round,
            }
            row = run_child("bench_protocol", params)
            mem = run_child("bench_protocol", {**params, "memory": True, "plain": False})
            row["server_held_bytes"] = mem["server_held_bytes"]
            print(
                f"  n={n} D={dim} k={degree} t={threshold} drop={dropout:.0%} ({dropout_round}):"
                f" client {row['client_s']:.3f}s server {row['server_s']:.3f}s wall"
                f" {row['wall_s']:.2f}s plain {row['plain_sum_s']:.4f}s ok={row['ok']}",
                flush=True,
            )
            rows.append(row)
    return rows


def render_issue3(rows: list[dict[str, Any]]) -> str:
    """Issue 3's Markdown table."""
    out = [
        "| n | D | k | t | dropout | client s (mean) | client s (max) | server s | wall s | "
        "plain sum s | server held MiB | process peak RSS MiB | sum ok |",
        "|---:|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        k = "full" if r["k"] == r["n"] - 1 else str(r["k"])
        drop = "0%" if not r["dropout"] else f"{r['dropout']:.0%} at {r['dropout_round']}"
        held = r.get("server_held_bytes")
        held_s = f"{held / 2**20:.1f}" if held else "-"
        out.append(
            f"| {r['n']} | {r['dim']:,} | {k} | {r['t']} | {drop} | {r['client_s']:.3f} | "
            f"{r['client_max_s']:.3f} | {r['server_s']:.3f} | {r['wall_s']:.2f} | "
            f"{r['plain_sum_s']:.4f} | {held_s} | {r['peak_rss_mb']:.0f} | "
            f"{'yes' if r['ok'] else 'NO'} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if child_main(argv, run_secagg):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = issue3_rows(args.quick, ("masked-input", "unmasking"))
    table = render_issue3(rows)
    print(table)
    if not args.quick:
        note = (
            "Per-client seconds are the mean per client summed over rounds (max: the slowest "
            "client per round, summed); server seconds are summed over rounds; 'plain sum' is "
            "the plain NumPy sum of the same included inputs. 'server held' is what the "
            "server session holds when the unmasking round starts (tracemalloc, separate "
            "run); 'process peak RSS' is the whole in-process simulation (all n clients).\n\n"
        )
        write_text(args.out / "protocol.md", "# secagg round vs plain sum\n\n" + note + table)
        write_text(args.out / "protocol.json", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
