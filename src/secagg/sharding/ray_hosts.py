"""Shard servers as Ray actors, spread over the nodes of a Ray cluster (the 'ray' extra).

Each actor runs one shard's ``secagg serve`` process on its own node, listening on that node's
IP address, and hands the shard's outcome (report and sum) back to the master when the round
ends; the shard's files stay in a temporary directory on its node, removed afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from secagg.errors import ConfigError
from secagg.sharding.host import LocalShard, discard_sum_files, shard_command
from secagg.sharding.master import ShardOutcome

__all__ = ["ShardHost", "ray_shards"]


class ShardHost:
    """Runs one shard process on the node the actor was placed on."""

    def __init__(self, index: int, command: list[str]) -> None:
        import ray

        self._dir = Path(tempfile.mkdtemp(prefix=f"secagg-shard-{index}-"))
        # Through Any: Ray leaves this function unannotated, which strict mypy refuses to call
        # where Ray is installed (and a type: ignore would be unused where it is not).
        util: Any = ray.util
        host = util.get_node_ip_address()
        bind = f"[{host}]:0" if ":" in host else f"{host}:0"
        self._shard = LocalShard(index, command, bind, self._dir)

    def pid(self) -> int:
        """The shard process's id on its node."""
        return self._shard.pid

    def wait_listening(self, timeout: float) -> str:
        """The shard's address once it listens."""
        return self._shard.wait_listening(timeout)

    def wait(self) -> ShardOutcome:
        """The shard's outcome once its process ended; its files are removed."""
        try:
            return self._shard.wait()
        finally:
            discard_sum_files(self._dir)
            shutil.rmtree(self._dir, ignore_errors=True)

    def stop(self) -> None:
        """End the shard's round (SIGTERM)."""
        self._shard.stop()


class _RayShard:
    """The master's handle on a :class:`ShardHost` actor."""

    def __init__(self, ray: Any, index: int, actor: Any) -> None:
        self._ray = ray
        self.index = index
        self.address = ""
        self._actor = actor
        self._pid = 0

    @property
    def pid(self) -> int:
        return self._pid

    def wait_listening(self, timeout: float) -> str:
        self.address = self._ray.get(self._actor.wait_listening.remote(timeout))
        self._pid = self._ray.get(self._actor.pid.remote())
        return self.address

    def wait(self) -> ShardOutcome:
        try:
            outcome: ShardOutcome = self._ray.get(self._actor.wait.remote())
        except self._ray.exceptions.RayError as exc:
            outcome = ShardOutcome(self.index, self.address)
            outcome.detail = f"the shard's Ray actor failed ({type(exc).__name__})"
        return outcome

    def stop(self) -> None:
        self._ray.get(self._actor.stop.remote())


def ray_shards(spec: Any, *, address: str) -> list[Any]:
    """Start one :class:`ShardHost` per shard, spread over the Ray cluster at ``address``."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray-address needs Ray: pip install 'secagg[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    host = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(ShardHost)
    return [
        _RayShard(
            ray,
            i,
            host.remote(
                i, shard_command(spec.serve_args, capacity, min(capacity, spec.min_shard_size))
            ),
        )
        for i, capacity in enumerate(spec.capacities)
    ]
