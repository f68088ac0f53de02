"""Flower tests need the flower extra; each module skips itself when flwr is absent."""

from __future__ import annotations

import os

# Read by Ray when it starts: without it Ray binds its services to the host's routed address;
# with it, a single-node cluster on 127.0.0.1 (tests stay on loopback). The second silences a
# FutureWarning of Ray's that pytest would turn into an error.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

# Ray (Flower's simulation backend): a fresh local cluster (never one another process started
# on this machine), its services bound to loopback only, and one actor (2 CPUs per ClientApp on
# the 2-core CI machine) so the run stays small.
LOOPBACK_BACKEND = {
    "client_resources": {"num_cpus": 2, "num_gpus": 0.0},
    "init_args": {
        "address": "local",
        "_node_ip_address": "127.0.0.1",
        "include_dashboard": False,
        "num_cpus": 2,
        "log_to_driver": False,
    },
}
