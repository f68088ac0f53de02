"""The injectable clock: virtual time for the transport's deadlines, over real gRPC streams.

The server below has hour-long deadlines; they pass when the test advances its ManualClock,
so these tests take as long as the rounds' real work (never a real deadline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

import secagg
from secagg.protocol.messages import Round
from secagg.transport import AggregationServer, RoundReport, ServerOptions
from secagg.transport.clock import ManualClock, SystemClock, wait_for

HOUR = 3600.0


def test_manual_clock_wakes_sleepers_in_order_only_when_advanced() -> None:
    async def main() -> list[str]:
        clock = ManualClock()
        woke: list[str] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(f"{name}@{clock.now():g}")

        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("b", 20), ("a", 10))]
        await asyncio.sleep(0.01)
        assert clock.sleepers() == 2
        assert clock.next_wake() == 10
        assert woke == []  # real time passed, virtual time did not
        clock.advance(15)
        await asyncio.sleep(0)
        assert woke == ["a@15"]
        clock.advance(5)
        await asyncio.gather(*tasks)
        assert clock.sleepers() == 0
        with pytest.raises(ValueError, match="forward"):
            clock.advance(-1)
        return woke

    assert asyncio.run(main()) == ["a@15", "b@20"]


def test_wait_for_times_out_on_the_clock_and_cancels_the_awaitable() -> None:
    async def main() -> None:
        clock = ManualClock()
        never = asyncio.get_running_loop().create_future()
        waiting = asyncio.create_task(wait_for(clock, never, 30))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        clock.advance(30)
        with pytest.raises(TimeoutError):
            await waiting
        assert never.cancelled()

        async def answer() -> int:
            return 7

        assert await wait_for(clock, answer(), 30) == 7
        assert clock.sleepers() == 0  # the timer of a finished wait is gone
        assert await wait_for(SystemClock(), answer(), 1) == 7

    asyncio.run(main())


async def _advance_when(
    clock: ManualClock, seen: list[str], wanted: Callable[[str], bool], seconds: float
) -> None:
    """Advance ``clock`` by ``seconds`` once a status line satisfies ``wanted``."""
    while not any(wanted(line) for line in seen):
        await asyncio.sleep(0.01)
    clock.advance(seconds)


@pytest.mark.parametrize("stall", [Round.ADVERTISE_KEYS, Round.MASKED_INPUT])
def test_an_hour_long_phase_deadline_drops_a_stalled_client_in_virtual_time(
    stall: Round,
) -> None:
    """A client that stops answering (stream open) is dropped when the phase deadline passes
    on the server's clock; the round completes with the others and the exact sum."""
    vectors = {f"u{i}": np.full(8, i + 1, dtype=np.uint32) for i in range(4)}
    clock = ManualClock()
    seen: list[str] = []

    async def main() -> tuple[RoundReport, list[secagg.Outcome]]:
        options = ServerOptions(
            clients=4, dim=8, bits=16, degree=3, threshold=3,
            join_timeout=HOUR, phase_timeout=HOUR, keys_timeout=HOUR,
        )  # fmt: skip
        server = AggregationServer(options, "127.0.0.1:0", status=seen.append, clock=clock)
        port = await server.start()
        running = asyncio.create_task(server.run())
        clients = [
            secagg.Client(
                f"127.0.0.1:{port}", name=n, insecure=True, timeout=60,
                stall_at=stall if n == "u0" else None,
                policy=secagg.ClientPolicy(allow_weak_parameters=True),
            ).submit(v)
            for n, v in vectors.items()
        ]  # fmt: skip
        gathered = asyncio.gather(*clients)
        # 3 of 4 answered the stalled phase: only the deadline can end it.
        await asyncio.wait_for(
            _advance_when(clock, seen, lambda line: f"{stall.label} 3/4" in line, HOUR), 60
        )
        outcomes = await asyncio.wait_for(gathered, 60)
        reports = await asyncio.wait_for(running, 60)
        return reports[0], outcomes

    report, outcomes = asyncio.run(main())
    assert report.status == "complete"
    assert report.dropped == {"u0": "no-response"}
    assert report.timings[stall.label] >= HOUR  # the phase lasted an hour on the clock
    if stall is Round.MASKED_INPUT:
        assert report.included == ["u1", "u2", "u3"]
        assert report.total is not None
        assert report.total.tolist() == [2 + 3 + 4] * 8
    by_name = {o.name: o for o in outcomes}
    assert all(by_name[n].included for n in ("u1", "u2", "u3"))
    assert not by_name["u0"].included


def test_the_join_deadline_starts_with_min_clients_in_virtual_time() -> None:
    """Three of four expected clients join; the round starts with them once the (hour-long)
    join deadline passes on the clock, and completes."""
    clock = ManualClock()

    async def main() -> RoundReport:
        options = ServerOptions(
            clients=4, min_clients=3, dim=4, bits=8, join_timeout=HOUR, phase_timeout=HOUR
        )
        server = AggregationServer(options, "127.0.0.1:0", clock=clock)
        port = await server.start()
        running = asyncio.create_task(server.run())
        clients = asyncio.gather(
            *(
                secagg.Client(f"127.0.0.1:{port}", name=f"j{i}", insecure=True).submit(
                    np.full(4, i, dtype=np.uint32)
                )
                for i in range(3)
            )
        )
        while server.waiting() < 3:
            await asyncio.sleep(0.01)
        assert not running.done()
        clock.advance(HOUR)
        await asyncio.wait_for(clients, 60)
        return (await asyncio.wait_for(running, 60))[0]

    report = asyncio.run(main())
    assert report.status == "complete"
    assert report.included == ["j0", "j1", "j2"]
    assert report.timings["join"] >= HOUR
