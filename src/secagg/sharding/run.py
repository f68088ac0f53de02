"""A sharded round end to end: start the shards, serve assignments, combine, write the report.

Writes into ``output``: ``shards.json`` as soon as every shard listens (index, address, pid,
capacity), then ``report.json`` (per-shard outcomes, the included clients of the released
shards) and ``sum.npy`` (only when at least one shard was released). Each shard's own files
are under ``output/shard-I/``; a discarded shard's sum files are deleted there.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import numpy as np

from secagg.sharding.assign import ShardAssigner
from secagg.sharding.coordinator import Coordinator
from secagg.sharding.host import LocalShard, discard_sum_files, shard_command
from secagg.sharding.master import ShardedResult, ShardOutcome, ShardStatus, combine

__all__ = ["ShardHandle", "ShardedRound", "run_sharded_round"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
START_TIMEOUT = 120.0  # seconds for a shard process to start listening


class ShardHandle(Protocol):
    """A running shard, wherever it runs."""

    index: int
    address: str

    @property
    def pid(self) -> int: ...

    def wait_listening(self, timeout: float) -> str: ...

    def wait(self) -> ShardOutcome: ...

    def stop(self) -> None: ...


@dataclass(slots=True)
class ShardedRound:
    """What a sharded round needs: the shards' capacities and their common serve options."""

    capacities: Sequence[int]
    serve_args: list[str]  # every shard's `secagg serve` options but clients/address/output
    min_shard_size: int
    bits: int
    host: str  # where local shards listen: HOST:0
    output: Path


def local_shards(spec: ShardedRound) -> list[ShardHandle]:
    """One ``secagg serve`` child process per shard on this machine."""
    return [
        LocalShard(
            i,
            shard_command(spec.serve_args, capacity, min(capacity, spec.min_shard_size)),
            spec.host,
            spec.output / f"shard-{i}",
        )
        for i, capacity in enumerate(spec.capacities)
    ]


async def run_sharded_round(
    spec: ShardedRound,
    coordinator_address: str,
    *,
    credentials: grpc.ServerCredentials | None = None,
    start: Callable[[ShardedRound], list[ShardHandle]] = local_shards,
    log: Callable[[str], None] = lambda _line: None,
) -> ShardedResult:
    """Run one sharded round; returns the combined result (also written to ``spec.output``)."""
    spec.output.mkdir(parents=True, exist_ok=True)
    shards = start(spec)
    try:
        addresses = [await asyncio.to_thread(s.wait_listening, START_TIMEOUT) for s in shards]
        _write_json(
            spec.output / "shards.json",
            [
                {"shard": s.index, "address": a, "pid": s.pid, "clients": c}
                for s, a, c in zip(shards, addresses, spec.capacities, strict=True)
            ],
        )
        coordinator = Coordinator(ShardAssigner(spec.capacities), addresses)
        port = await coordinator.start(coordinator_address, credentials)
        host = coordinator_address.rsplit(":", 1)[0]
        log(f"coordinator listening on {host}:{port}; {len(shards)} shards: {addresses}")
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:  # end the shards' rounds (each reports itself interrupted)
            loop.add_signal_handler(sig, _stop_all, shards, log, sig)
        try:
            outcomes = list(await asyncio.gather(*(asyncio.to_thread(s.wait) for s in shards)))
        finally:
            for sig in _SIGNALS:
                loop.remove_signal_handler(sig)
            await coordinator.stop()
    except BaseException:
        for shard in shards:
            shard.stop()
        raise
    result = combine(outcomes, spec.bits, spec.min_shard_size)
    for outcome in result.shards:
        if outcome.status is ShardStatus.DISCARDED:
            discard_sum_files(spec.output / f"shard-{outcome.shard}")
        log(
            f"shard {outcome.shard}: {outcome.status.value}, {len(outcome.included)} included"
            + (f" ({outcome.detail})" if outcome.detail else "")
        )
    if result.total is not None:
        with (spec.output / "sum.npy").open("wb") as fh:
            np.save(fh, result.total)
    _write_json(spec.output / "report.json", result.to_json())
    return result


def _stop_all(shards: list[ShardHandle], log: Callable[[str], None], sig: signal.Signals) -> None:
    log(f"stopped by {sig.name}: ending every shard's round")
    for shard in shards:
        shard.stop()


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
