"""Inside Flower, side by side: one Flower app, secured by Flower's SecAgg+ or by secagg.

Both apps run in Flower's simulation engine (``run_simulation``, Ray) with the same nodes, the
same local "training" (:func:`local_update`: the global model plus a fixed random change of
size 0.05, so the round's cost is the secure aggregation's, not the model's) and the same
failing nodes (10% dropout: every tenth partition crashes at the third secure-aggregation step,
after sharing its keys, before its masked vector). They differ only in the secure-aggregation
layer, as far as the two APIs allow:

* Flower: ``secaggplus_mod`` on a NumPyClient ClientApp, ``SecAggPlusWorkflow`` inside
  ``DefaultWorkflow`` with the legacy ``flwr.server.strategy.FedAvg`` (Flower's SecAgg+ exists
  only for the legacy API);
* secagg: ``secagg_mod`` on a Message-API ClientApp, ``SecAggGrid`` around the grid of
  ``flwr.serverapp.strategy.FedAvg``.

Both get the same neighbour count and threshold: the parameter finder's choice for n at 10%
dropout (Flower's ``num_shares`` is k + 1, its ``reconstruction_threshold`` t).

Each configuration runs in a fresh interpreter, capped by ``--timeout`` seconds (Ray's start
included); a capped run is reported as not finished. Measured inside the ServerApp: wall time
of the whole round (from the strategy's configure to its aggregate, server and clients; Ray's
actors start lazily, so both implementations' rounds include their warm-up), and the server
process's peak resident memory during the round above its level just before (sampled
every 20 ms; the simulation's in-memory SuperLink, which holds every message, lives in that
process too; the ClientApps run in Ray worker processes, not counted).

    python -m benchmarks.bench_flower_app [--quick] [--timeout S] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
STEP_TO_FAIL = 3  # setup, share keys, (masked input: fail here), unmask
ROUNDS = 1  # the round is timed from the strategy's configure to its aggregate
NS = (10, 50, 100)
SIZES = (10**5, 10**6)
DROPOUTS = (0.0, 0.1)
IMPLS = ("flower", "secagg")


def local_update(weights: np.ndarray, partition: int) -> tuple[np.ndarray, int]:
    """The shared "training": a fixed change per partition, and its example count."""
    rng = np.random.default_rng(partition)
    change = rng.uniform(-0.05, 0.05, weights.shape).astype(np.float32)
    return (weights + change).astype(np.float32), 50 + partition


def parameters(n: int) -> tuple[int, int]:
    """(k, t) as secagg's parameter finder picks them for n at 10% dropout."""
    from secagg.graph import find_parameters

    found = find_parameters(n, dropout_rate=0.1, corrupt_rate=0.05, mode="semi-honest")
    return found.degree, found.threshold


def _first_step(msg: Any) -> bool:
    """Whether ``msg`` opens a round (secagg's or Flower's SecAgg+ setup step)."""
    records = msg.content.config_records
    ours = records.get("secagg")
    theirs = records.get("secaggplus_configs")
    return (ours is not None and ours.get("step") == "setup") or (
        theirs is not None and theirs.get("stage") == "setup"
    )


def _failing(dropout: float) -> Any:
    """A mod that crashes every tenth partition at the third secure step of every round."""
    from flwr.app import ConfigRecord

    def mod(msg: Any, context: Any, call_next: Any) -> Any:
        steps = context.state.config_records.setdefault("bench-steps", ConfigRecord({"n": 0}))
        steps["n"] = 1 if _first_step(msg) else int(steps["n"]) + 1
        partition = int(context.node_config["partition-id"])
        if dropout > 0 and partition % 10 == 0 and int(steps["n"]) == STEP_TO_FAIL:
            raise RuntimeError("benchmark node drops out")
        return call_next(msg, context)

    return mod


class _PeakRSS:
    """Samples this process's resident memory in a thread; peak above the starting level."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _secagg_apps(n: int, size: int, dropout: float, out: dict[str, Any]) -> tuple[Any, Any]:
    from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg

    from secagg.flower import SecAggGrid, secagg_mod

    k, t = parameters(n)
    client = ClientApp(mods=[_failing(dropout), secagg_mod])

    @client.train()
    def train(msg: Any, context: Any) -> Any:
        weights = msg.content["arrays"]["w"].numpy()
        new, examples = local_update(weights, int(context.node_config["partition-id"]))
        content = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(new)}),
                "metrics": MetricRecord({"num-examples": examples}),
            }
        )
        return Message(content, reply_to=msg)

    server = ServerApp()

    class Timed(SecAggGrid):  # type: ignore[misc]
        def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> Any:
            batch = list(messages)
            start = time.perf_counter()
            replies = super().send_and_receive(batch, timeout=timeout)
            if batch:
                out.setdefault("rounds_s", []).append(time.perf_counter() - start)
            return replies

    @server.main()
    def main(grid: Any, context: Any) -> None:
        secure = Timed(grid, clip=0.1, degree=k, threshold=t)
        strategy = FedAvg(fraction_evaluate=0.0, min_available_nodes=n)
        initial = ArrayRecord({"w": Array(np.zeros(size, dtype=np.float32))})
        _wait_for_nodes(grid, n)
        with _PeakRSS() as mem:
            result = strategy.start(grid=secure, initial_arrays=initial, num_rounds=ROUNDS)
        out["peak_mb"] = (mem.peak - mem.base) / 2**20
        report = secure.reports[-1]
        out["included"] = len(report.included)
        out["aborted"] = report.aborted
        out["finished"] = len(result.arrays) > 0 and len(out.get("rounds_s", [])) == ROUNDS

    return server, client


def _flower_apps(n: int, size: int, dropout: float, out: dict[str, Any]) -> tuple[Any, Any]:
    from flwr.client import NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.clientapp import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

    k, t = parameters(n)

    class Node(NumPyClient):  # type: ignore[misc]
        def __init__(self, partition: int) -> None:
            self.partition = partition

        def fit(self, parameters: list[np.ndarray], config: Any) -> Any:
            new, examples = local_update(parameters[0], self.partition)
            return [new], examples, {}

    def client_fn(context: Any) -> Any:
        return Node(int(context.node_config["partition-id"])).to_client()

    client = ClientApp(client_fn=client_fn, mods=[_failing(dropout), secaggplus_mod])
    server = ServerApp()

    @server.main()
    def main(grid: Any, context: Any) -> None:
        holder: dict[str, Any] = {}

        class Recording(FedAvg):  # type: ignore[misc]
            def configure_fit(self, server_round: int, parameters: Any, manager: Any) -> Any:
                holder["start"] = time.perf_counter()
                return super().configure_fit(server_round, parameters, manager)

            def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
                out.setdefault("rounds_s", []).append(time.perf_counter() - holder["start"])
                holder["results"] = len(results)
                return super().aggregate_fit(server_round, results, failures)

        strategy = Recording(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=n,
            min_available_clients=n,
            initial_parameters=ndarrays_to_parameters([np.zeros(size, dtype=np.float32)]),
        )
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=ROUNDS), strategy=strategy
        )
        workflow = DefaultWorkflow(
            fit_workflow=SecAggPlusWorkflow(num_shares=k + 1, reconstruction_threshold=t)
        )
        _wait_for_nodes(grid, n)
        with _PeakRSS() as mem:
            workflow(grid, legacy)
        out["peak_mb"] = (mem.peak - mem.base) / 2**20
        out["included"] = holder.get("results", 0)
        out["finished"] = len(out.get("rounds_s", [])) == ROUNDS

    return server, client


def _wait_for_nodes(grid: Any, n: int) -> None:
    """Wait (outside the timed round) until all n simulated nodes registered."""
    while len(list(grid.get_node_ids())) < n:
        time.sleep(0.2)


def child(impl: str, n: int, size: int, dropout: float) -> dict[str, Any]:
    """One configuration in this interpreter; returns the measurements."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1 only
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    from flwr.simulation import run_simulation

    out: dict[str, Any] = {"impl": impl, "n": n, "size": size, "dropout": dropout}
    build = _secagg_apps if impl == "secagg" else _flower_apps
    server, client = build(n, size, dropout, out)
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"address": "local", "include_dashboard": False, "log_to_driver": False},
    }
    run_simulation(server, client, num_supernodes=n, backend_config=backend)
    rounds = out.get("rounds_s", [])
    if rounds:
        out["wall_s"] = rounds[-1]
        out["first_round_s"] = rounds[0]
    return out


def configurations(
    quick: bool,
    ns: tuple[int, ...] = NS,
    sizes: tuple[int, ...] = SIZES,
    dropouts: tuple[float, ...] = DROPOUTS,
) -> list[tuple[str, int, int, float]]:
    if quick:
        return [(impl, 10, 10**4, d) for d in DROPOUTS for impl in IMPLS]
    return [(impl, n, size, d) for size in sizes for n in ns for d in dropouts for impl in IMPLS]


def run_all(quick: bool, timeout: float, **only: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    capped: list[tuple[str, int, int, float]] = []
    for impl, n, size, dropout in configurations(quick, **only):
        smaller = [
            c for c in capped if c[0] == impl and c[3] == dropout and c[1] <= n and c[2] <= size
        ]
        if smaller:
            # A larger round of an implementation that did not finish a smaller one in time
            # would not either: say so instead of spending the cap again.
            _, n0, size0, _ = smaller[0]
            row = {"impl": impl, "n": n, "size": size, "dropout": dropout}
            row["error"] = f"not run: did not finish n={n0}, P={size0:.0e} within the cap"
            rows.append(row)
            print(_line(row), flush=True)
            continue
        cmd = [sys.executable, "-m", "benchmarks.bench_flower_app", "--child", impl, str(n)]
        cmd += [str(size), str(dropout)]
        row: dict[str, Any] = {"impl": impl, "n": n, "size": size, "dropout": dropout}
        began = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if lines:
                row.update(json.loads(lines[-1].removeprefix("RESULT ")))
            else:
                row["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        except subprocess.TimeoutExpired:
            row["error"] = f"did not finish within {timeout:.0f} s (cap, Ray start included)"
            capped.append((impl, n, size, dropout))
        row["process_s"] = time.perf_counter() - began
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    what = f"{row['impl']:>7} n={row['n']:>3} P={row['size']:.0e} drop={row['dropout']:.0%}"
    if "wall_s" not in row or not row.get("finished"):
        return f"{what}: {row.get('error') or row.get('aborted') or 'no aggregate'}"
    return (
        f"{what}: round {row['wall_s']:.2f} s, server peak +{row['peak_mb']:.0f} MiB, "
        f"{row['included']} included"
    )


def render(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: one line per (n, P, dropout), both implementations."""
    by = {(r["impl"], r["n"], r["size"], r["dropout"]): r for r in rows}
    keys = sorted(
        {(r["n"], r["size"], r["dropout"]) for r in rows}, key=lambda k: (k[1], k[0], k[2])
    )
    out = [
        "| n | P | dropout | Flower SecAgg+ round | secagg round | speed-up | Flower server "
        "peak | secagg server peak |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(r: dict[str, Any] | None, field: str, fmt: str) -> str:
        if r is None:
            return "not run"
        if not r.get("finished") or field not in r:
            error = str(r.get("error"))
            if error.startswith("not run"):
                return "not run"
            return "did not finish" if "did not finish" in error else "failed"
        return fmt.format(r[field])

    for n, size, d in keys:
        f, s = by.get(("flower", n, size, d)), by.get(("secagg", n, size, d))
        ratio = "-"
        if f and s and f.get("finished") and s.get("finished"):
            ratio = f"{f['wall_s'] / s['wall_s']:.1f}x"
        out.append(
            f"| {n} | 10^{round(np.log10(size))} | {d:.0%} | {cell(f, 'wall_s', '{:.1f} s')} "
            f"| {cell(s, 'wall_s', '{:.1f} s')} | {ratio} | {cell(f, 'peak_mb', '{:.0f} MiB')} "
            f"| {cell(s, 'peak_mb', '{:.0f} MiB')} |"
        )
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, size in zip(axes, SIZES, strict=True):
        for impl, style in (("flower", "o--"), ("secagg", "s-")):
            for d in DROPOUTS:
                pts = [
                    (r["n"], r["wall_s"])
                    for r in rows
                    if r["impl"] == impl
                    and r["size"] == size
                    and r["dropout"] == d
                    and r.get("finished")
                ]
                if pts:
                    xs, ys = zip(*sorted(pts), strict=True)
                    label = f"{'Flower SecAgg+' if impl == 'flower' else 'secagg'}, {d:.0%} drop"
                    ax.plot(xs, ys, style, label=label)
        ax.set_title(f"whole round in Flower's simulation, P = 10^{int(np.log10(size))}")
        ax.set_xlabel("simulated clients n")
        ax.set_ylabel("wall seconds")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 10, P = 10^4 only, no files")
    parser.add_argument("--timeout", type=float, default=300.0, help="cap per configuration (s)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=4, metavar=("IMPL", "N", "SIZE", "DROPOUT"))
    parser.add_argument("--ns", type=int, nargs="+", default=list(NS))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--dropouts", type=float, nargs="+", default=list(DROPOUTS))
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args(argv)
    if args.child:
        impl, n, size, dropout = args.child
        result = child(impl, int(n), int(size), float(dropout))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    rows = run_all(
        args.quick,
        args.timeout,
        ns=tuple(args.ns),
        sizes=tuple(args.sizes),
        dropouts=tuple(args.dropouts),
    )
    table = render(rows)
    print(table)
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = f"flower_app{args.tag}"
        (args.out / f"{stem}.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
        (args.out / f"{stem}.md").write_text(table + "\n", encoding="utf-8")
        plot(rows, args.out / f"{stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
