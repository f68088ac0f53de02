"""A local multi-node Ray cluster on loopback for the tests that need Ray (the 'ray' extra)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

# Worker processes inherit these. Ray otherwise binds every node to the host's routed IP
# (tests stay on 127.0.0.1) and warns (FutureWarning, an error here) about accelerator vars.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

# Ray leaves /dev/null handles to the garbage collector (ResourceWarning in its own code).
RAY_WARNINGS = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[Any]:
    """``nodes`` raylets on this machine, the driver connected; everything stopped after."""
    ray = pytest.importorskip("ray", reason="needs the 'ray' extra")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    # Read when an address is chosen; set here too in case Ray was imported before this module.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": cpus_per_node, "include_dashboard": False},
        )
        try:
            for _ in range(nodes - 1):
                cluster.add_node(num_cpus=cpus_per_node)
            ray.init(address=cluster.address, log_to_driver=False)
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()
