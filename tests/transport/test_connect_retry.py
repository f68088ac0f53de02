"""A connect that fails before the server's first frame (overload, a reset) is retried with
jittered exponential backoff within the client's timeout; the backoff runs on the client's
injectable clock, so the test sees every pause exactly and waits for none of them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np

import secagg
from secagg.transport import AggregationServer, ServerOptions
from secagg.transport.clock import ManualClock

RETRYING = re.compile(r"connecting to .* failed \(UNAVAILABLE: overloaded\); retrying in")


class _Overloaded(AggregationServer):
    """Refuses the first ``refusals`` streams with UNAVAILABLE before its Challenge."""

    refusals = 0

    async def _participate(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        if self.refusals > 0:
            self.refusals -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded")
        async for frame in super()._participate(requests, context):
            yield frame


async def _skip_pauses(clock: ManualClock, lines: list[str], pauses: list[float]) -> None:
    """Each time the client announces a retry, move its clock to the end of the pause."""
    handled = 0
    while True:
        await asyncio.sleep(0.005)
        if sum(1 for line in lines if RETRYING.search(line)) > handled and clock.sleepers():
            handled += 1
            wake = clock.next_wake()
            assert wake is not None
            pauses.append(wake - clock.now())
            clock.advance(pauses[-1])


def _run(refusals: int, timeout: float) -> tuple[list[Any], list[float], list[str], float]:
    clock = ManualClock()
    lines: list[str] = []
    pauses: list[float] = []

    async def main() -> list[Any]:
        options = ServerOptions(clients=2, dim=4, bits=8, join_timeout=30, phase_timeout=30)
        server = _Overloaded(options, "127.0.0.1:0")
        server.refusals = refusals
        port = await server.start()
        running = asyncio.create_task(server.run())
        skipper = asyncio.create_task(_skip_pauses(clock, lines, pauses))
        retried = secagg.Client(
            f"127.0.0.1:{port}", name="retried", insecure=True, timeout=timeout,
            clock=clock, progress=lines.append,
        )  # fmt: skip
        other = secagg.Client(f"127.0.0.1:{port}", name="other", insecure=True, timeout=30)
        first = asyncio.create_task(retried.submit(np.arange(4, dtype=np.uint32)))
        if refusals > 50:  # refused for good: only the retried client, and no round
            outcome = await asyncio.wait_for(first, 60)
            skipper.cancel()
            running.cancel()
            await server.stop(0)
            return [outcome]
        while len(pauses) < refusals:  # the other client joins once the refusals are spent
            await asyncio.sleep(0.005)
        outcomes = await asyncio.wait_for(
            asyncio.gather(first, other.submit(np.ones(4, dtype=np.uint32))), 60
        )
        skipper.cancel()
        await asyncio.wait_for(running, 60)
        return list(outcomes)

    outcomes = asyncio.run(main())
    return outcomes, pauses, lines, clock.now()


def test_a_refused_connect_is_retried_with_growing_jittered_pauses() -> None:
    outcomes, pauses, lines, _now = _run(refusals=4, timeout=60)
    assert all(o.included for o in outcomes), outcomes
    assert len(pauses) == 4
    # Exponential: the n-th pause is in [d/2, d) for d = 0.25 s * 2^n (jitter from the CSPRNG).
    for n, pause in enumerate(pauses):
        delay = 0.25 * 2**n
        assert delay / 2 <= pause < delay, (n, pause)
    assert sum(1 for line in lines if RETRYING.search(line)) == 4


def test_retries_stop_at_the_clients_timeout_with_the_transport_error() -> None:
    outcomes, pauses, _lines, now = _run(refusals=10**6, timeout=20)
    (outcome,) = outcomes
    assert not outcome.included
    assert outcome.reason == "transport-error"
    assert "UNAVAILABLE: overloaded" in outcome.detail
    assert len(pauses) >= 5  # 0.25, 0.5, 1, 2, 4 (jittered) and on, capped at 5 s
    assert max(pauses) <= 5.0
    assert now <= 20.0 + 1e-9  # no pause runs past the client's timeout
    assert sum(pauses) == now
