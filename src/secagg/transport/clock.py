"""Time for the transport: deadlines, idle timeouts and waits read one injectable clock.

The server and the client never call ``loop.time()``, ``asyncio.sleep`` or
``asyncio.wait_for`` directly: they ask their :class:`Clock`. :class:`SystemClock` (the
default) is the event loop's monotonic time; :class:`ManualClock` is virtual time that moves
only when a test calls :meth:`ManualClock.advance`, so a test of a 30-second deadline takes
milliseconds and the deadline passes exactly when the test says.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Clock", "ManualClock", "SystemClock", "wait_for"]

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic seconds and sleeping in them (called from the event loop's thread)."""

    def now(self) -> float:
        """The current time in seconds (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class SystemClock:
    """The running event loop's monotonic clock (what production uses)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def wait_for(clock: Clock, awaitable: Awaitable[T], timeout: float) -> T:
    """``awaitable``'s result, or :class:`TimeoutError` once ``timeout`` passed on ``clock``.

    On timeout the awaitable is cancelled, as with :func:`asyncio.wait_for` (which this is for
    the system clock).
    """
    if isinstance(clock, SystemClock):
        return await asyncio.wait_for(awaitable, timeout)
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait([task, timer], return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            # Let the cancellation land before the caller goes on (as asyncio.wait_for does).
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise TimeoutError
    return task.result()


class ManualClock:
    """Virtual time for tests: it stands still until :meth:`advance` moves it.

    Sleepers whose wake-up time has come are woken in order of that time; :meth:`sleepers`
    says how many wait, so a test can advance once the code under test is blocked on time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._seq = itertools.count()
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (self._now + seconds, next(self._seq), future))
        await future  # a cancelled sleeper's future is skipped by advance()

    def sleepers(self) -> int:
        """How many sleeps are pending."""
        return sum(1 for _at, _n, future in self._queue if not future.done())

    def next_wake(self) -> float | None:
        """The earliest pending wake-up time (None: nobody sleeps)."""
        pending = [at for at, _n, future in self._queue if not future.done()]
        return min(pending) if pending else None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose time has come."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; got {seconds}")
        self._now += seconds
        while self._queue and self._queue[0][0] <= self._now:
            _at, _n, future = heapq.heappop(self._queue)
            if not future.done():
                future.set_result(None)
