"""``secagg.Server``: multi-round training and analytics over the gRPC service, from Python.

::

    server = secagg.Server("127.0.0.1:7000", clients=20, encoder=encoder, insecure=True)

    def on_round(outcome: secagg.RoundOutcome) -> bytes | dict | None:
        if outcome.result is not None:
            model = apply(model, outcome.result.weighted_mean)
        return secagg.pack_arrays(model) if outcome.round < 10 else None  # None: stop

    server.run_sync(on_round, task=secagg.pack_arrays(model))

Each round hands its task (bytes, or a dict of arrays sent as :func:`~secagg.pack_arrays`
bytes) to every client that joins it, and binds the task's :func:`~secagg.context_digest` into
the round config, so the clients check it and, in malicious mode, the consistency round proves
that every included client saw the same task. The callback gets each round's
:class:`RoundOutcome` as soon as it ended and returns the next round's task, or None to stop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from secagg.analytics import AnalyticsResult, AnalyticsRound, release, withheld
from secagg.encoding import Encoder
from secagg.encoding.result import DecodedResult
from secagg.encoding.task import task_bytes
from secagg.errors import ConfigError, EncodingError
from secagg.identity.registry import IdentityRegistryFile
from secagg.protocol.config import Mode
from secagg.transport.address import parse_address
from secagg.transport.metrics import ServerMetrics
from secagg.transport.server import AggregationServer, RoundReport, ServerOptions

__all__ = ["NextTask", "RoundOutcome", "Server"]

# What a round callback returns: the next round's task, or None to stop.
NextTask = bytes | Mapping[str, Any] | None


@dataclass(frozen=True)
class RoundOutcome:
    """One finished round: its report and, when it completed, the decoded result.

    ``report`` has the status, included/dropped names with reasons, per-phase timings and
    bytes. ``result`` is the :class:`~secagg.encoding.DecodedResult` (with an encoder) or the
    :class:`~secagg.analytics.AnalyticsResult` (with an analytics round), or None without
    either or when the round produced no sum; ``total`` is the raw sum mod 2^b.
    """

    report: RoundReport
    result: DecodedResult | AnalyticsResult | None = None
    task_digest: bytes | None = None

    @property
    def round(self) -> int:
        """The round's number at the server (1-based)."""
        return self.report.round

    @property
    def complete(self) -> bool:
        """Whether the round produced a sum."""
        return self.report.status == "complete"

    @property
    def total(self) -> Any:
        """The raw sum (a NumPy vector mod 2^b), or None."""
        return self.report.total

    @property
    def included(self) -> list[str]:
        """Names of the clients whose input is in the sum."""
        return self.report.included

    @property
    def dropped(self) -> dict[str, str]:
        """Name -> reason of every client dropped from the round."""
        return self.report.dropped


RoundCallback = Callable[[RoundOutcome], NextTask | Awaitable[NextTask]]


class Server:
    """A secure-aggregation server running rounds until its callback returns None.

    ``address`` is ``HOST[:PORT]`` (port 0 picks one; :attr:`port` tells it once started).
    Give ``encoder`` (the one every client builds from the same spec and template) to get
    decoded results, or ``analytics`` (a :class:`~secagg.analytics.AnalyticsRound`) to answer
    a query; otherwise give ``dim`` (and ``bits``) and read the raw sums. ``credentials`` are
    gRPC server credentials (see :func:`secagg.transport.tls.server_credentials`);
    ``insecure=True`` serves plaintext, for loopback testing only. ``metrics_address``
    (``HOST:PORT``) serves Prometheus metrics (extra ``metrics``). Further keyword arguments go
    to :class:`~secagg.transport.server.ServerOptions` (timeouts, limits, ``min_clients``,
    ``registry`` for malicious mode, ...).
    """

    def __init__(
        self,
        address: str,
        *,
        clients: int,
        encoder: Encoder | None = None,
        analytics: AnalyticsRound | None = None,
        dim: int | None = None,
        bits: int | None = None,
        mode: Mode = "semi-honest",
        registry: IdentityRegistryFile | None = None,
        credentials: grpc.ServerCredentials | None = None,
        insecure: bool = False,
        metrics_address: str | None = None,
        log: Callable[[str], None] | None = None,
        **options: Any,
    ) -> None:
        if encoder is not None and analytics is not None:
            raise ConfigError("give an encoder or an analytics round, not both")
        if credentials is None and not insecure:
            raise ConfigError("give TLS credentials, or insecure=True (loopback testing only)")
        dim, bits = _vector_shape(clients, encoder, analytics, dim, bits, options)
        self.encoder = encoder
        self.analytics = analytics
        self.options = ServerOptions(
            clients=clients,
            dim=dim,
            bits=bits or 32,
            mode=mode,
            registry=registry,
            rounds=2**31,  # the callback stops the server
            **options,
        )
        self.metrics: ServerMetrics | None = None
        self._metrics_address = None
        if metrics_address is not None:
            self._metrics_address = parse_address(metrics_address)
            self.metrics = ServerMetrics()
        self._server = AggregationServer(
            self.options,
            address,
            credentials=credentials,
            log=log,
            on_round=self._after_round,
            metrics=self.metrics,
        )
        self.metrics_port: int | None = None
        self._callback: RoundCallback | None = None
        self._outcomes: list[RoundOutcome] = []

    @property
    def port(self) -> int:
        """The bound port (0 until started)."""
        return self._server.port

    @property
    def aggregation_server(self) -> AggregationServer:
        """The underlying gRPC server (for its reports, lobby and shutdown)."""
        return self._server

    async def start(self) -> int:
        """Bind the gRPC (and metrics) endpoints; returns the gRPC port. :meth:`run` calls it."""
        if self._server.port:
            return self._server.port
        if self.metrics is not None and self._metrics_address is not None:
            addr = self._metrics_address
            self.metrics_port = self.metrics.serve(addr.host, addr.port)
        return await self._server.start()

    def expect(self, clients: int) -> None:
        """Wait for ``clients`` joiners from the next round on (call it from the callback)."""
        if self.encoder is not None and clients > self.encoder.n_clients:
            raise ConfigError(f"the encoder allows at most {self.encoder.n_clients} clients")
        self._server.expect(clients)

    def request_shutdown(self, detail: str) -> None:
        """Stop at once: the running round ends as interrupted (see AggregationServer)."""
        self._server.request_shutdown(detail)

    def run_sync(self, on_round: RoundCallback, *, task: NextTask = None) -> list[RoundOutcome]:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run(on_round, task=task))

    async def run(self, on_round: RoundCallback, *, task: NextTask = None) -> list[RoundOutcome]:
        """Run rounds until ``on_round`` returns None; returns every round's outcome.

        ``task`` is what the first round hands out (None: no task). ``on_round`` (a function
        or coroutine function) gets each :class:`RoundOutcome` before the next round starts
        and returns the next round's task; an aborted round calls it too, so it decides
        whether to retry with the same task.
        """
        if self.analytics is not None and task is not None:
            raise ConfigError("an analytics round binds its query: it takes no task")
        self._callback = on_round
        self._outcomes = []
        self._server.set_task(None if task is None else task_bytes(task))
        await self.start()
        try:
            await self._server.run()
        finally:
            if self.metrics is not None:
                self.metrics.close()
        return self._outcomes

    async def _after_round(self, report: RoundReport) -> None:
        """The server's on_round: hand the outcome to the callback, apply its answer."""
        outcome = self._outcome(report)
        self._outcomes.append(outcome)
        if self._callback is None:
            self._server.finish()
            return
        produced = self._callback(outcome)
        if inspect.isawaitable(produced):
            produced = await produced
        if produced is None:
            self._server.finish()
        else:
            self._server.set_task(task_bytes(produced))

    def _outcome(self, report: RoundReport) -> RoundOutcome:
        result: DecodedResult | AnalyticsResult | None = None
        if self.analytics is not None:
            if report.total is None:
                result = withheld(
                    self.analytics,
                    [],
                    dict(report.dropped),
                    report.abort_reason or "aborted",
                    report.abort_detail,
                )
            else:
                result = release(
                    self.analytics, report.total, list(report.included), dict(report.dropped)
                )
        elif self.encoder is not None and report.total is not None and report.included:
            try:
                result = report.decode(self.encoder)
            except (EncodingError, ConfigError):
                result = None  # more clients than the encoder allows: the raw sum stays
        digest = None if report.task_digest is None else bytes.fromhex(report.task_digest)
        return RoundOutcome(report, result, digest)


def _vector_shape(
    clients: int,
    encoder: Encoder | None,
    analytics: AnalyticsRound | None,
    dim: int | None,
    bits: int | None,
    options: dict[str, Any],
) -> tuple[int, int | None]:
    """The rounds' ``dim`` and ``bits`` (an encoder's or analytics round's, else the given ones).

    Fills ``options`` with what the encoder or analytics round binds into every round.
    """
    if encoder is not None:
        dim, bits = encoder.dim, encoder.bits
        # Announced in Welcome and bound into the round: clients encoding with another
        # spec leave with spec-mismatch before sending anything.
        options.setdefault("spec", encoder.round_spec.encode())
        if clients > encoder.n_clients:
            raise ConfigError(
                f"the encoder was built for at most {encoder.n_clients} clients, not {clients}"
            )
    elif analytics is not None:
        dim, bits = analytics.query.dim, analytics.bits
        options.setdefault("context_digest", analytics.digest())
    if dim is None:
        raise ConfigError("give dim (or an encoder / analytics round that fixes it)")
    if "rounds" in options:
        raise ConfigError("the callback decides how many rounds run (return None to stop)")
    return dim, bits
