"""Sharded aggregation: one secagg round per shard, a coordinator, and a master that adds sums.

For deployments that outgrow one server (Bonawitz et al., "Towards Federated Learning at
Scale", MLSys 2019): the coordinator assigns each client to a shard uniformly at random, each
shard runs an unchanged secagg round as its own ``secagg serve`` process, and the master adds
the shard sums mod 2^b. A shard with fewer than ``min_shard_size`` included clients is
discarded, never released. What the server learns is written in ``docs/scaling.md``.
"""

from __future__ import annotations

from secagg.sharding.assign import ShardAssigner, balanced_capacities
from secagg.sharding.master import ShardedResult, ShardOutcome, combine

__all__ = [
    "ShardAssigner",
    "ShardOutcome",
    "ShardedResult",
    "balanced_capacities",
    "combine",
]
