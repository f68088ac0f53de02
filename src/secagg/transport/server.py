"""The aggregation server on grpc.aio: registration, per-round deadlines, chunked inputs.

Each client opens one bidirectional ``Participate`` stream per aggregation round. The stream
authenticates the client's index: a message naming another sender drops the client. Every
stream has a reader task that parses and validates frames and puts events on one queue; a
single driver task owns the :class:`~secagg.protocol.server.session.ServerSession` (no locks),
waits for each phase's messages until all expected ones arrived or the phase deadline passed,
then calls ``advance()`` and sends what it returns. Masked inputs arrive in chunks and are
assembled into one array per client; a semaphore bounds how many are assembled at once so
that memory stays O(D) whatever the number of clients.

Joiners wait in a :class:`~secagg.transport.lobby.Lobby`; D is the server's declaration. In
round 0 a welcomed client that stays silent for ``keys_timeout`` (or whose stream ends) gives
its slot to the next waiting client, so the round's quorum is made of clients that advertised
keys (semi-honest mode). :meth:`AggregationServer.request_shutdown` (SIGINT/SIGTERM in the CLI)
ends the running round as ``interrupted`` and tells its clients ``server-shutdown``.

Nothing secret is ever logged: only names, indices, counts, sizes and reason codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from secagg.encoding.context import context_digest
from secagg.encoding.round_spec import spec_digest
from secagg.errors import ConfigError
from secagg.protocol.config import DIGEST_BYTES, RoundConfig
from secagg.protocol.server.session import ServerSession
from secagg.reasons import AbortReason, RejectReason
from secagg.transport.address import Address, bind_problem, parse_address
from secagg.transport.clock import Clock, SystemClock, wait_for
from secagg.transport.health import add_health, set_serving
from secagg.transport.lobby import ClientConn, Lobby
from secagg.transport.metrics import ServerMetrics
from secagg.transport.report import RoundReport
from secagg.transport.round_observer import report_observer
from secagg.transport.server_options import DEFAULT_MAX_DIM, ServerOptions
from secagg.transport.server_round import RoundDriverMixin
from secagg.transport.server_streams import StreamsMixin
from secagg.transport.service import METHOD, RPC, SERVICE
from secagg.transport.slots import Event, Slots

__all__ = ["DEFAULT_MAX_DIM", "METHOD", "AggregationServer", "RoundReport", "ServerOptions"]

if TYPE_CHECKING:
    from secagg.parallel.pool import MaskPool

_Slots = Slots  # the name tests and subclasses used before the module split


class AggregationServer(StreamsMixin, RoundDriverMixin):
    """Runs ``options.rounds`` aggregation rounds for clients connecting to ``address``.

    ``address`` is ``HOST[:PORT]`` (see :func:`~secagg.transport.address.parse_address`).
    ``log`` gets plain progress lines; ``status`` (optional) gets a one-line live status; both
    may quote client-chosen names and details, so a console must print them as plain text.
    ``credentials`` are gRPC server credentials; None means plaintext (loopback testing only).
    ``on_round`` is called with each round's report as soon as the round ended (completed,
    aborted or interrupted), before the next round starts (a coroutine is awaited); it may
    call :meth:`set_task` for the next round or :meth:`finish` to make it the last. ``metrics`` (see
    :mod:`secagg.transport.metrics`) counts rounds, clients and bytes for Prometheus. Every
    deadline, idle timeout and lobby wait reads ``clock`` (default: the event loop's; tests
    pass a :class:`~secagg.transport.clock.ManualClock`).
    """

    def __init__(
        self,
        options: ServerOptions,
        address: str | Address,
        *,
        credentials: grpc.ServerCredentials | None = None,
        log: Callable[[str], None] | None = None,
        status: Callable[[str], None] | None = None,
        on_round: Callable[[RoundReport], Awaitable[None] | None] | None = None,
        metrics: ServerMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options
        self.bind_address = address if isinstance(address, Address) else parse_address(address)
        self.address = self.bind_address.target
        self.credentials = credentials
        self.log = log or (lambda _line: None)
        self._status = status or (lambda _line: None)
        self._on_round = on_round
        self._server: grpc.aio.Server | None = None
        self.metrics = metrics
        self._task: bytes | None = None
        if metrics is not None:
            metrics.watch_lobby(lambda: self._lobby.live())
        self._finishing = False
        self._health: Any = None
        self._lobby = Lobby(
            dim=options.dim,
            capacity=options.max_waiting or 4 * options.clients + 16,
            max_message_bytes=options.max_message_bytes,
            registry=options.registry,
            mode=options.mode,
            log=self.log,
        )
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._round_no = 0
        self._phase_name = "join"
        self._bytes_in: dict[str, int] = {}
        self._assembly: asyncio.Semaphore | None = None
        self._upload_idle = min(options.phase_timeout, options.upload_idle_timeout)
        self._keys_idle = min(options.phase_timeout, options.keys_timeout)
        self._clock: Clock = clock or SystemClock()
        self._slots: Slots | None = None
        self._round_task: asyncio.Task[None] | None = None
        self._pool: MaskPool | None = None
        self._warming: asyncio.Future[None] | None = None
        self._shutdown: str | None = None
        self.port = 0
        self.reports: list[RoundReport] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        """Bind and start serving; returns the bound port.

        Raises :class:`ConfigError` naming the problem when the address cannot be bound.
        """
        limit = self.options.max_message_bytes
        server = grpc.aio.server(
            options=[
                # gRPC's own cap is twice the limit: frames in between reach parse_client_frame
                # and drop their sender as oversized-message; beyond it gRPC ends the stream.
                ("grpc.max_receive_message_length", 2 * limit),
                ("grpc.max_send_message_length", max(limit, 64 * 1024 * 1024)),
                ("grpc.so_reuseport", 0),
                ("grpc.http2.bdp_probe", 0),
            ]
        )
        handler = grpc.stream_stream_rpc_method_handler(self._participate)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {RPC: handler}),)
        )
        self._health = add_health(server)
        problem = bind_problem(self.bind_address)
        if problem is not None:  # say it in one line, before gRPC logs a bind failure
            raise ConfigError(f"cannot listen on {self.address}: {problem}")
        try:
            if self.credentials is None:
                port = server.add_insecure_port(self.address)
            else:
                port = server.add_secure_port(self.address, self.credentials)
        except RuntimeError:
            port = 0  # gRPC's "Failed to bind": say why below, in one line
        if port == 0:
            problem = bind_problem(self.bind_address) or "gRPC could not bind it"
            raise ConfigError(f"cannot listen on {self.address}: {problem}")
        await server.start()
        self._server = server
        self._start_pool()
        self.port = int(port)
        set_serving(self._health, serving=not self._finishing and self._shutdown is None)
        return self.port

    def _start_pool(self) -> None:
        """With ``options.workers`` > 1: the worker processes that expand masks in unmasking,
        started in the background while clients join (the server listens at once)."""
        if self.options.workers <= 1 or self._pool is not None:
            return
        # Imported here: only a server with workers starts processes.
        from secagg.parallel.pool import MaskPool

        # spawn, not fork: forking a process that runs gRPC is unsafe.
        pool = MaskPool(self.options.workers, start_method="spawn")
        self._warming = asyncio.create_task(asyncio.to_thread(pool.warm_up))
        self._pool = pool
        self.log(f"unmasking with {pool.workers} worker processes")

    def set_task(self, task: bytes | None) -> None:
        """Hand ``task`` (bytes; see :mod:`secagg.encoding.task`) to every client of the next round.

        Its :func:`~secagg.context_digest` becomes the round config's ``context_digest`` (it
        replaces ``options.context_digest``); each client checks the bytes it received against
        it. None: the rounds from now on have no task.
        """
        if task is not None and len(task) > self.options.max_task_bytes:
            raise ConfigError(
                f"the task has {len(task)} bytes; max_task_bytes is {self.options.max_task_bytes}"
            )
        self._task = None if task is None else bytes(task)

    def expect(self, clients: int) -> None:
        """Wait for ``clients`` joiners from the next round on (e.g. after losing some for good).

        Capped below by ``min_clients``' floor of 2; raises :class:`ConfigError` like
        :class:`ServerOptions` for an impossible count.
        """
        minimum = self.options.min_clients
        self.options = dataclasses.replace(
            self.options,
            clients=clients,
            min_clients=None if minimum is None else min(minimum, clients),
        )

    def finish(self) -> None:
        """Run no round after the current one (or the next, between rounds)."""
        self._finishing = True
        set_serving(self._health, serving=False)

    @property
    def round_number(self) -> int:
        """The number of the round running or last run (0 before the first)."""
        return self._round_no

    @property
    def round_id(self) -> str | None:
        """The hex round id of the round running now (None between rounds)."""
        slots = self._slots
        return None if slots is None else slots.config.round_id.hex()

    def waiting(self) -> int:
        """How many clients wait in the lobby for a round (or for a slot to free up)."""
        return self._lobby.live()

    def request_shutdown(self, detail: str) -> None:
        """Stop at once (e.g. on SIGTERM): the running round ends as interrupted, its clients
        and everyone waiting are told ``server-shutdown`` with ``detail``, no new round starts.
        :meth:`run` still returns (and ``on_round`` still gets) the interrupted round's report.
        """
        if self._shutdown is None:
            self._shutdown = detail
        self._lobby.accepting = False
        set_serving(self._health, serving=False)
        if self._round_task is not None:
            self._round_task.cancel()

    async def stop(self, grace: float = 1.0) -> None:
        """Reject everyone still waiting and stop serving."""
        self._lobby.accepting = False
        set_serving(self._health, serving=False)
        if self._shutdown is not None:
            self._lobby.refuse_all(AbortReason.SERVER_SHUTDOWN.value, self._shutdown)
        else:
            self._lobby.refuse_all(RejectReason.NO_ROUND.value, "the server ran all its rounds")
        if self._server is not None:
            await self._server.stop(grace)
        pool, self._pool = self._pool, None
        if pool is not None:
            if self._warming is not None:
                await asyncio.gather(self._warming, return_exceptions=True)
            await asyncio.to_thread(pool.close)

    async def run(self) -> list[RoundReport]:
        """Run all rounds (the server must be started); returns one report per round."""
        try:
            for number in range(1, self.options.rounds + 1):
                if self._shutdown is not None or self._finishing:
                    break
                report = RoundReport(round=number)
                task = asyncio.create_task(self._run_round(number, report))
                self._round_task = task
                try:
                    await asyncio.wait([task])
                except asyncio.CancelledError:
                    task.cancel()
                    raise
                finally:
                    self._round_task = None
                if task.cancelled():
                    self._mark_interrupted(report)
                else:
                    task.result()  # a bug in the round surfaces here
                self.reports.append(report)
                if self.metrics is not None:
                    self.metrics.round_ended(report)
                if self._on_round is not None:
                    called = self._on_round(report)
                    if inspect.isawaitable(called):
                        await called  # e.g. computing the next round's task
        finally:
            await self.stop()
        return self.reports

    def _mark_interrupted(self, report: RoundReport) -> None:
        if report.status == "interrupted":
            return
        report.status = "interrupted"
        report.total = None
        report.abort_reason = AbortReason.SERVER_SHUTDOWN.value
        report.abort_detail = f"{self._shutdown or 'stopped'} during {self._phase_name}"

    # -- rounds -----------------------------------------------------------------------------

    async def _gather(self) -> list[ClientConn]:
        """Wait for ``clients`` joiners (or ``min_clients`` at the join deadline) and take them;
        returns [] (leaving the lobby as it is) when too few joined."""
        opts = self.options
        deadline = self._clock.now() + opts.join_timeout
        minimum = opts.min_clients or opts.clients
        while self._lobby.live() < opts.clients:
            self._status(
                f"round {self._round_no}: waiting for clients {self._lobby.live()}/{opts.clients}"
            )
            remaining = deadline - self._clock.now()
            if remaining <= 0:
                break
            self._lobby.changed.clear()
            with contextlib.suppress(TimeoutError):
                await wait_for(self._clock, self._lobby.changed.wait(), remaining)
        if self._lobby.live() < minimum:
            return []
        return self._lobby.take(opts.clients)

    async def _run_round(self, number: int, report: RoundReport) -> None:
        opts = self.options
        self._round_no = number
        self._phase_name = "join"
        self._bytes_in = {}
        started = self._clock.now()
        members = await self._gather()
        report.timings["join"] = self._clock.now() - started
        if self.metrics is not None:
            self.metrics.round_started()
        minimum = max(2, opts.min_clients or opts.clients)
        if not members:
            joined = self._lobby.live()
            report.abort_reason = AbortReason.TOO_FEW_CLIENTS.value
            report.abort_detail = f"{joined} clients joined; {minimum} needed"
            self.log(f"round {number}: aborted ({report.abort_reason}): {report.abort_detail}")
            if number == opts.rounds:  # no later round for them: tell them why, now
                self._lobby.refuse_all(report.abort_reason, report.abort_detail)
            return
        task = self._task
        try:
            config, session = self._configure(members, task)
            session.observer = report_observer(report, opts.observer)
        except ConfigError as exc:
            report.abort_reason = AbortReason.TOO_FEW_CLIENTS.value
            report.abort_detail = f"cannot configure the round: {exc}"
            self.log(f"round {number}: aborted ({report.abort_reason}): {report.abort_detail}")
            for conn in members:
                conn.refuse(report.abort_reason, report.abort_detail)
                self._lobby.release(conn)
            return
        # Slots of idle joiners are refilled from the lobby in semi-honest mode only: in
        # malicious mode Welcome's roster binds each index to a registered name.
        slots = Slots(
            number,
            config,
            dict(enumerate(members, 1)),
            refill=opts.mode != "malicious",
            task=task,
        )
        if task is not None:
            report.task_digest = config.context_digest.hex()
        self._slots = slots
        try:
            await self._drive(slots, session, report)
        except asyncio.CancelledError:
            self._interrupt_round(slots, session, report)
            raise
        finally:
            self._slots = None
            for conn in slots.holders.values():
                conn.close()
                self._lobby.release(conn)

    def _configure(
        self, members: list[ClientConn], task: bytes | None
    ) -> tuple[RoundConfig, ServerSession]:
        """The round's config and server session for ``members`` (raises ConfigError)."""
        opts = self.options
        n = len(members)
        degree = opts.degree if opts.degree is None else min(opts.degree, n - 1)
        config = RoundConfig.create(
            n,
            opts.dim,
            opts.bits,
            degree=degree,
            threshold=opts.threshold,
            mode=opts.mode,
            dropout_rate=opts.dropout_rate,
            corrupt_rate=opts.corrupt_rate,
            allow_unsafe=opts.allow_unsafe,
            context_digest=(
                context_digest(task)
                if task is not None
                else opts.context_digest or bytes(DIGEST_BYTES)
            ),
            spec_digest=spec_digest(opts.spec),
        )
        registry = None
        if opts.registry is not None:
            assignment = {conn.name: i for i, conn in enumerate(members, 1)}
            registry = opts.registry.with_indices(assignment)
        expand = None if self._pool is None else self._pool.add_many
        return config, ServerSession(config, registry=registry, expand_masks=expand)
