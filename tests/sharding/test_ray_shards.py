"""Shard servers hosted as Ray actors on a two-node local cluster (the 'ray' extra)."""

from __future__ import annotations

import asyncio
import functools
import socket
from pathlib import Path

import numpy as np
import pytest

from secagg.sharding.coordinator import find_shard
from secagg.sharding.ray_hosts import ray_shards
from secagg.sharding.run import ShardedRound, run_sharded_round
from secagg.transport.client import Client
from tests.ray_helpers import RAY_WARNINGS

ray = pytest.importorskip("ray", reason="Ray shard hosts need the 'ray' extra")

pytestmark = RAY_WARNINGS


def test_ray_hosted_shards_sum_exactly(ray_cluster: object, tmp_path: Path) -> None:
    n, dim = 6, 4
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        coordinator = f"127.0.0.1:{s.getsockname()[1]}"
    spec = ShardedRound(
        capacities=[3, 3],
        serve_args=["--dim", str(dim), "--bits", "32", "--insecure", "--join-timeout", "120"],
        min_shard_size=3,
        bits=32,
        host="127.0.0.1:0",
        output=tmp_path,
    )
    vectors = {f"c{i}": np.full(dim, i + 1, dtype=np.uint32) for i in range(n)}

    async def run() -> object:
        round_ = asyncio.create_task(
            run_sharded_round(
                spec, coordinator, start=functools.partial(ray_shards, address="auto")
            )
        )

        async def one(name: str) -> None:
            _shard, address = await find_shard(coordinator, name, wait=120)
            client = Client(address, name=name, insecure=True, timeout=120, wait=30)
            await client.submit(vectors[name])

        await asyncio.gather(*(one(name) for name in vectors))
        return await round_

    result = asyncio.run(run())
    assert result.released == [0, 1]  # type: ignore[attr-defined]
    assert result.included == sorted(vectors)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(result.total, sum(vectors.values()))  # type: ignore[attr-defined]
    assert (tmp_path / "report.json").exists()
