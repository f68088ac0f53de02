"""Load figures over loopback (a script, not a test; its numbers go into notes, never asserts).

    python tests/transport/load_figures.py --procs 100 --dim 10000
    python tests/transport/load_figures.py --procs 4 --per-proc 100 --dim 10000
    python tests/transport/load_figures.py --procs 50 --dim 10000000 --phase-timeout 600

Starts `secagg serve` (its peak RSS is measured with getrusage of the child) and ``--procs``
client processes, each running ``--per-proc`` asyncio clients, then prints one JSON line:
clients included, seconds, server peak RSS, and whether the sum equals the plain sum.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PY = sys.executable


def _clients_main(address: str, names: list[str], dim: int, seed: int) -> int:
    from secagg.transport.client import Client

    async def run() -> list[bool]:
        rng = np.random.default_rng(seed)
        tasks = []
        for name in names:
            vector = rng.integers(0, 2**32, dim, dtype=np.uint64).astype(np.uint32)
            client = Client(address, name=name, insecure=True, timeout=3600)
            tasks.append(client.submit(vector))
        return [o.included for o in await asyncio.gather(*tasks)]

    return 0 if all(asyncio.run(run())) else 1


def _vectors(names: list[str], dim: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.integers(0, 2**32, dim, dtype=np.uint64).astype(np.uint32) for n in names}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--procs", type=int, required=True)
    parser.add_argument("--per-proc", type=int, default=1)
    parser.add_argument("--dim", type=int, default=10_000)
    parser.add_argument("--phase-timeout", type=float, default=300)
    parser.add_argument("--check", action="store_true", help="compare with the plain sum")
    args = parser.parse_args()
    n = args.procs * args.per_proc
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        serve = [PY, "-m", "secagg.cli.main", "serve", "--address", address, "--clients",
                 str(n), "--dim", str(args.dim), "--max-dim", str(args.dim), "--bits", "32",
                 "--output", str(tmp / "out"), "--insecure",
                 "--join-timeout", "900", "--phase-timeout", str(args.phase_timeout)]  # fmt: skip
        wrapper = (
            "import resource, subprocess, sys;"
            "rc = subprocess.run(sys.argv[1:]).returncode;"
            "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
            " file=sys.stderr); sys.exit(rc)"
        )
        log = (tmp / "server.log").open("wb")
        server = subprocess.Popen([PY, "-c", wrapper, *serve], stdout=log, stderr=log)
        time.sleep(2)
        started = time.perf_counter()
        workers = []
        for p in range(args.procs):
            names = [f"p{p:03d}-c{c:04d}" for c in range(args.per_proc)]
            workers.append(
                subprocess.Popen(
                    [PY, __file__, "--worker", address, str(args.dim), str(p), *names],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        codes = [w.wait() for w in workers]
        rc = server.wait()
        elapsed = time.perf_counter() - started
        text = (tmp / "server.log").read_text()
        maxrss = next(
            (int(line.split()[1]) for line in text.splitlines() if line.startswith("MAXRSS_KB")), 0
        )
        result: dict[str, object] = {
            "clients": n,
            "processes": args.procs,
            "dim": args.dim,
            "server_rc": rc,
            "clients_ok": codes.count(0) * args.per_proc if args.per_proc == 1 else codes.count(0),
            "seconds": round(elapsed, 1),
            "server_peak_rss_mb": round(maxrss / 1024, 1),
            "input_bytes_all_clients_mb": round(n * args.dim * 4 / 2**20, 1),
        }
        if rc == 0:
            report = json.loads((tmp / "out" / "report.json").read_text())
            result["included"] = len(report["included"])
            result["timings"] = {k: round(v, 2) for k, v in report["timings"].items()}
            result["k"], result["t"] = report["degree"], report["threshold"]
            if args.check:
                total = np.zeros(args.dim, dtype=np.uint32)
                for p in range(args.procs):
                    names = [f"p{p:03d}-c{c:04d}" for c in range(args.per_proc)]
                    vecs = _vectors(names, args.dim, p)
                    for name in names:
                        if name in report["included"]:
                            total += vecs[name]
                result["matches_plain_sum"] = bool(
                    np.array_equal(np.load(tmp / "out" / "sum.npy"), total)
                )
        else:
            result["server_log_tail"] = text[-2000:]
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        os.nice(1)
        _addr, _dim, _seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        sys.exit(_clients_main(_addr, sys.argv[5:], _dim, _seed))
    sys.exit(main())
