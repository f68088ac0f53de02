"""Prometheus metrics of an aggregation server (the standard ``prometheus_client`` library).

Optional: install the ``metrics`` extra. Every metric lives in the :class:`ServerMetrics`'
own registry, so several servers in one process do not mix. Counters move when a Hello is
answered and when a round ends (from the same :class:`~secagg.transport.server.RoundReport`
the server writes), so a scrape between rounds matches the reports exactly. Nothing here names
a client: only counts, sizes, phases and reason codes.

=====================================  =======================================================
``secagg_rounds_started_total``        rounds whose join phase ended
``secagg_rounds_completed_total``      rounds that produced a sum
``secagg_rounds_aborted_total``        rounds without a sum, by ``reason``
``secagg_clients_joined_total``        Hellos admitted to the lobby
``secagg_clients_rejected_total``      Hellos refused, by ``reason`` (``server-full``, ...)
``secagg_clients_included_total``      clients whose input is in a completed round's sum
``secagg_clients_dropped_total``       clients dropped from a round, by ``reason``
``secagg_bytes_received_total``        bytes received in rounds, by ``phase``
``secagg_bytes_sent_total``            bytes sent in rounds, by ``phase``
``secagg_phase_duration_seconds``      histogram of phase durations, by ``phase``
``secagg_running_sum_bytes``           memory of the running sum of the round in progress
``secagg_waiting_clients``             clients waiting in the lobby
=====================================  =======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from secagg.errors import ConfigError
from secagg.reasons import OutcomeReason
from secagg.transport import secagg_pb2 as pb

if TYPE_CHECKING:
    from secagg.transport.server import RoundReport

__all__ = ["ServerMetrics"]

_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ServerMetrics:
    """The counters, histograms and gauges of one server, in their own registry."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigError(
                "metrics need the prometheus_client package: pip install 'secagg[metrics]'"
            ) from None
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.rounds_started = prom.Counter(
            "secagg_rounds_started", "Rounds whose join phase ended", registry=r
        )
        self.rounds_completed = prom.Counter(
            "secagg_rounds_completed", "Rounds that produced a sum", registry=r
        )
        self.rounds_aborted = prom.Counter(
            "secagg_rounds_aborted", "Rounds without a sum", ["reason"], registry=r
        )
        self.clients_joined = prom.Counter(
            "secagg_clients_joined", "Hellos admitted to the lobby", registry=r
        )
        self.clients_rejected = prom.Counter(
            "secagg_clients_rejected", "Hellos refused", ["reason"], registry=r
        )
        self.clients_included = prom.Counter(
            "secagg_clients_included", "Clients in a completed round's sum", registry=r
        )
        self.clients_dropped = prom.Counter(
            "secagg_clients_dropped", "Clients dropped from a round", ["reason"], registry=r
        )
        self.bytes_received = prom.Counter(
            "secagg_bytes_received", "Bytes received in rounds", ["phase"], registry=r
        )
        self.bytes_sent = prom.Counter(
            "secagg_bytes_sent", "Bytes sent in rounds", ["phase"], registry=r
        )
        self.phase_seconds = prom.Histogram(
            "secagg_phase_duration_seconds",
            "Duration of round phases",
            ["phase"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.running_sum_bytes = prom.Gauge(
            "secagg_running_sum_bytes", "Memory of the running sum in progress", registry=r
        )
        self.waiting = prom.Gauge(
            "secagg_waiting_clients", "Clients waiting in the lobby", registry=r
        )
        self._http: Any = None

    def watch_lobby(self, waiting: Callable[[], int]) -> None:
        """Read the lobby size at each scrape."""
        self.waiting.set_function(lambda: float(waiting()))

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` over HTTP on ``host:port`` (0 picks a port); returns the port."""
        try:
            httpd, _thread = self._prom.start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._http = httpd
        return int(httpd.server_address[1])

    def close(self) -> None:
        """Stop the HTTP endpoint (if serving)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def hello(self, refusal: bytes | None) -> None:
        """Count a Hello: admitted (``refusal`` None) or refused with the Reject's reason."""
        if refusal is None:
            self.clients_joined.inc()
            return
        reason = pb.ServerFrame.FromString(refusal).reject.reason or OutcomeReason.REJECTED.value
        self.clients_rejected.labels(reason).inc()

    def round_started(self) -> None:
        """A round's join phase ended."""
        self.rounds_started.inc()

    def running_sum(self, nbytes: int) -> None:
        """The running sum of the round in progress takes ``nbytes`` (0 when none)."""
        self.running_sum_bytes.set(nbytes)

    def round_ended(self, report: RoundReport) -> None:
        """Count a finished round from its report."""
        if report.status == "complete":
            self.rounds_completed.inc()
            self.clients_included.inc(len(report.included))
        else:
            self.rounds_aborted.labels(report.abort_reason or report.status).inc()
        for reason in report.dropped.values():
            self.clients_dropped.labels(reason).inc()
        for phase, n in report.bytes_received.items():
            self.bytes_received.labels(phase).inc(n)
        for phase, n in report.bytes_sent.items():
            self.bytes_sent.labels(phase).inc(n)
        for phase, seconds in report.timings.items():
            self.phase_seconds.labels(phase).observe(seconds)
        self.running_sum_bytes.set(0)
