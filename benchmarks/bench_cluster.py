"""Scaling of simulate (in-process and engine="ray") and of sharded network rounds.

    python -m benchmarks.bench_cluster simulate --n 10000 --dim 100 --engine local
    python -m benchmarks.bench_cluster simulate --n 10000 --dim 100 --engine ray --cpus 2
    python -m benchmarks.bench_cluster sharded --n 2000 --shards 4 --dim 100 --kill 1

Each run prints one JSON line. ``simulate``: wall seconds, per-round seconds, the driver's peak
RSS (getrusage) and, for ray, the peak summed RSS of the actor processes (sampled with ps
every 0.5 s). ``sharded``: `secagg serve --shards N` with asyncio clients in ``--procs``
processes via the coordinator; optionally one shard is SIGKILLed once its clients stall before
the masked-input round; checks the total against the surviving shards' included clients.
Numbers go into docs/scaling.md, never into asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _actor_rss_sampler(stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.5):
        out = subprocess.run(["ps", "-eo", "rss,args"], capture_output=True, text=True).stdout
        total = sum(int(line.split()[0]) for line in out.splitlines()[1:] if "ClientBatch" in line)
        peak[0] = max(peak[0], total)


def simulate_main(args: argparse.Namespace) -> int:
    import secagg

    x = np.random.default_rng(0).integers(0, 1 << 16, size=(args.n, args.dim), dtype=np.uint32)
    options: dict[str, object] = {}
    stop, peak = threading.Event(), [0]
    if args.engine == "ray":
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        import ray

        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        options["batch_size"] = args.batch
        threading.Thread(target=_actor_rss_sampler, args=(stop, peak), daemon=True).start()
    start = time.perf_counter()
    result = secagg.simulate(
        x,
        bits=32,
        dropout=args.dropout,
        dropout_round="masked-input",
        engine=args.engine,
        seed=1,
        **options,  # type: ignore[arg-type]
    )
    seconds = time.perf_counter() - start
    stop.set()
    exact = bool(np.array_equal(result.total, result.plain_total(x)))
    print(json.dumps({
        "bench": "simulate", "engine": args.engine, "n": args.n, "dim": args.dim,
        "k": result.config.degree, "t": result.config.threshold,
        "included": len(result.included), "seconds": round(seconds, 1),
        "rounds": {k: {"clients_total": round(v.clients_total, 2), "server": round(v.server, 2)}
                   for k, v in result.timings.items()},
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "actors_peak_rss_mb": peak[0] // 1024, "exact": exact,
    }))  # fmt: skip
    return 0 if exact else 1


def _clients_main(coordinator: str, names: list[str], dim: int, stall: str | None) -> int:
    from secagg.protocol.messages import Round
    from secagg.sharding.coordinator import find_shard
    from secagg.transport.client import Client

    async def one(name: str) -> None:
        shard, address = await find_shard(coordinator, name, wait=600)
        vector = _vector(name, dim)
        stall_at = Round.MASKED_INPUT if stall is not None and shard == int(stall) else None
        client = Client(address, name=name, insecure=True, timeout=600, stall_at=stall_at)
        # A killed shard's clients fail; the master's report counts who was included.
        with contextlib.suppress(Exception):
            await client.submit(vector)

    async def run() -> None:
        await asyncio.gather(*(one(n) for n in names))

    asyncio.run(run())
    return 0


def _vector(name: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(name.encode()[-8:].rjust(8, b"\0"), "big")
    return np.random.default_rng(seed).integers(0, 1 << 20, dim, dtype=np.uint64).astype(np.uint32)


def sharded_main(args: argparse.Namespace) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    coordinator = f"127.0.0.1:{port}"
    names = [f"c{i:06d}" for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp_name:
        out = Path(tmp_name) / "out"
        serve = [sys.executable, "-m", "secagg.cli.main", "serve", "--address", coordinator,
                 "--clients", str(args.n), "--shards", str(args.shards), "--min-shard-size",
                 str(args.min_shard_size), "--dim", str(args.dim), "--bits", "32", "--insecure",
                 "--output", str(out), "--join-timeout", "600", "--phase-timeout",
                 str(args.phase_timeout)]  # fmt: skip
        started = time.perf_counter()
        server = subprocess.Popen(serve, stderr=subprocess.DEVNULL)
        stall = str(args.kill) if args.kill is not None else None
        per = -(-args.n // args.procs)
        workers = [
            subprocess.Popen([sys.executable, "-m", "benchmarks.bench_cluster", "_clients",
                              coordinator, str(args.dim), stall or "-", *names[i : i + per]])
            for i in range(0, args.n, per)
        ]  # fmt: skip
        if args.kill is not None:
            while not (out / "shards.json").exists():
                time.sleep(0.5)
            shards = json.loads((out / "shards.json").read_text())
            # The stalled clients hold the doomed shard in its masked-input round: kill it then.
            log = out / f"shard-{args.kill}" / "serve.log"
            while "share-keys done" not in (log.read_text() if log.exists() else ""):
                time.sleep(0.2)
            os.kill(shards[args.kill]["pid"], signal.SIGKILL)
        code = server.wait()
        seconds = time.perf_counter() - started
        for w in workers:
            w.wait()
        report = json.loads((out / "report.json").read_text())
        total = np.load(out / "sum.npy") if (out / "sum.npy").exists() else None
        expected = np.zeros(args.dim, dtype=np.uint32)
        for name in report["included"]:
            expected += _vector(name, args.dim)
        print(json.dumps({
            "bench": "sharded", "n": args.n, "shards": args.shards, "dim": args.dim,
            "seconds": round(seconds, 1), "exit": code,
            "shard_outcomes": [(s["shard"], s["status"], s["included"]) for s in report["shards"]],
            "included": len(report["included"]),
            "exact": total is not None and bool(np.array_equal(total, expected)),
        }))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_clients":
        coordinator, dim, stall, *names = argv[1:]
        return _clients_main(coordinator, names, int(dim), None if stall == "-" else stall)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    sim = sub.add_parser("simulate")
    sim.add_argument("--n", type=int, default=10_000)
    sim.add_argument("--dim", type=int, default=100)
    sim.add_argument("--engine", choices=["local", "ray"], default="local")
    sim.add_argument("--cpus", type=int, default=2)
    sim.add_argument("--batch", type=int, default=None)
    sim.add_argument("--dropout", type=float, default=0.05)
    sh = sub.add_parser("sharded")
    sh.add_argument("--n", type=int, default=2000)
    sh.add_argument("--shards", type=int, default=4)
    sh.add_argument("--dim", type=int, default=100)
    sh.add_argument("--procs", type=int, default=4)
    sh.add_argument("--min-shard-size", type=int, default=100)
    sh.add_argument("--phase-timeout", type=float, default=120)
    sh.add_argument("--kill", type=int, default=None)
    args = parser.parse_args(argv)
    return simulate_main(args) if args.what == "simulate" else sharded_main(args)


if __name__ == "__main__":
    sys.exit(main())
