"""Process-parallel unmasking in the network server: ``ServerOptions(workers=N)`` and
``secagg serve --workers N`` give the exact sum, with dropped clients' masks expanded by the
worker processes (secagg.parallel.pool, shared with the simulator)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

import secagg
from secagg.errors import ConfigError
from secagg.parallel.pool import MaskPool
from secagg.protocol.messages import Round
from secagg.transport import AggregationServer, RoundReport, ServerOptions
from secagg.transport.clock import ManualClock
from tests.transport.helpers import Procs, free_port, random_vectors, wait_all

HOUR = 3600.0


def test_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="workers"):
        ServerOptions(clients=3, dim=4, workers=0)


def test_the_sum_is_exact_with_worker_processes_and_a_dropped_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """u0 stalls before its masked input: the server reconstructs its pairwise masks and
    removes them (and every survivor's self mask) in 2 worker processes."""
    expansions: list[int] = []
    parallel_add_many = MaskPool.add_many

    def counted(pool: MaskPool, acc: Any, bits: int, keys: Any) -> None:
        keys = list(keys)
        expansions.append(len(keys))
        parallel_add_many(pool, acc, bits, keys)

    monkeypatch.setattr(MaskPool, "add_many", counted)
    rng = np.random.default_rng(7)
    # D not a multiple of the workers' 16-byte slices, values over the whole ring.
    vectors = {f"u{i}": rng.integers(0, 2**20, 1001, dtype=np.uint32) for i in range(5)}
    clock = ManualClock()
    seen: list[str] = []
    lines: list[str] = []

    async def main() -> RoundReport:
        options = ServerOptions(
            clients=5, dim=1001, bits=20, degree=4, threshold=3, workers=2,
            join_timeout=HOUR, phase_timeout=HOUR,
        )  # fmt: skip
        server = AggregationServer(
            options, "127.0.0.1:0", status=seen.append, log=lines.append, clock=clock
        )
        port = await server.start()
        running = asyncio.create_task(server.run())
        clients = asyncio.gather(
            *(
                secagg.Client(
                    f"127.0.0.1:{port}", name=n, insecure=True, timeout=60,
                    stall_at=Round.MASKED_INPUT if n == "u0" else None,
                    policy=secagg.ClientPolicy(allow_weak_parameters=True),
                ).submit(v)
                for n, v in vectors.items()
            )
        )  # fmt: skip
        while not any("masked-input 4/5" in line for line in seen):
            await asyncio.sleep(0.01)
        clock.advance(HOUR)
        await asyncio.wait_for(clients, 120)
        return (await asyncio.wait_for(running, 120))[0]

    report = asyncio.run(main())
    assert report.status == "complete"
    assert report.dropped == {"u0": "no-response"}
    assert report.included == ["u1", "u2", "u3", "u4"]
    expected = sum(vectors[n].astype(np.uint64) for n in report.included) % 2**20
    assert report.total is not None
    assert np.array_equal(report.total.astype(np.uint64), expected)
    assert "unmasking with 2 worker processes" in lines
    # 4 self masks plus u0's pairwise masks with its 4 neighbours went through the pool.
    assert sum(expansions) == 8


def test_serve_with_workers_sums_exactly(procs: Procs) -> None:
    port = free_port()
    names = ["w0", "w1", "w2"]
    vectors = random_vectors(names, 257, 32, seed=5)
    server = procs.serve(
        port, "--clients", "3", "--dim", "257", "--bits", "32", "--workers", "2",
        "--insecure", "--join-timeout", "60", "--phase-timeout", "60",
    )  # fmt: skip
    clients = [
        procs.client(port, n, vectors[n], "--insecure", "--allow-weak-parameters") for n in names
    ]
    assert wait_all(clients) == [0, 0, 0]
    assert wait_all([server]) == [0], procs.log("server")
    expected = sum(vectors[n].astype(np.uint64) for n in names) % 2**32
    assert np.array_equal(procs.total().astype(np.uint64), expected)
    assert "unmasking with 2 worker processes" in procs.log("server")
