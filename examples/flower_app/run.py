"""Train the app twice in Flower's simulation engine, without and with secure aggregation,
and print both accuracy curves side by side (``python run.py [rounds] [nodes]``).

The same ClientApp serves both runs; the ServerApps differ only in ``SecAggGrid``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# Ray binds a single-node cluster to 127.0.0.1 with this (else to the host's routed address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

from flower_app import client_app, server_app
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

BACKEND = {
    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    "init_args": {"address": "local", "include_dashboard": False, "log_to_driver": False},
}


def curve(secure: bool, rounds: int, nodes: int) -> dict[int, float]:
    out: dict[int, Any] = {}
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        result = server_app.run(grid, rounds=rounds, secure=secure)
        out.update({r: m["accuracy"] for r, m in result.evaluate_metrics_serverapp.items()})

    run_simulation(app, client_app.app, num_supernodes=nodes, backend_config=BACKEND)
    return out


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    nodes = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    plain, secure = curve(False, rounds, nodes), curve(True, rounds, nodes)
    print("round  accuracy (FedAvg)  accuracy (FedAvg + secagg)")
    for r in sorted(plain):
        print(f"{r:>5}  {plain[r]:>17.4f}  {secure.get(r, float('nan')):>26.4f}")
