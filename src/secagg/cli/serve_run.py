"""Running ``secagg serve``'s server: logs, live status, metrics, signals, analytics answers."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click
import grpc
from rich.status import Status

from secagg.analytics import AnalyticsResult, AnalyticsRound, release, withheld
from secagg.cli.console import err_console, plain
from secagg.cli.jsonlog import json_logger
from secagg.errors import ConfigError
from secagg.transport.address import Address
from secagg.transport.metrics import ServerMetrics
from secagg.transport.server import AggregationServer, RoundReport, ServerOptions

__all__ = ["Setup", "analytics_answer", "serve"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Setup:
    """What an operator added to the server: a task, metrics, the log format."""

    task: bytes | None
    metrics: ServerMetrics | None
    metrics_at: Address | None
    log_format: str


async def serve(
    options: ServerOptions,
    address: Address,
    credentials: grpc.ServerCredentials | None,
    on_round: Callable[[RoundReport], None],
    stopped_by: list[signal.Signals],
    setup: Setup,
) -> list[RoundReport]:
    json_logs = setup.log_format == "json"
    live = err_console.is_terminal and not json_logs
    servers: list[AggregationServer] = []

    def text_log(line: str) -> None:
        if live:
            err_console.log(plain(line))
        else:
            print(f"secagg serve: {plain(line).plain}", file=sys.stderr, flush=True)

    log = (
        json_logger("secagg.serve", lambda: servers[0].round_id if servers else None)
        if json_logs
        else text_log
    )

    def build(status: Status | None = None) -> AggregationServer:
        update = None if status is None else (lambda line: status.update(plain(line)))
        server = AggregationServer(
            options,
            address,
            credentials=credentials,
            log=log,
            status=update,
            on_round=on_round,
            metrics=setup.metrics,
        )
        server.set_task(setup.task)
        servers.append(server)
        return server

    if setup.metrics is not None and setup.metrics_at is not None:
        try:
            port = setup.metrics.serve(setup.metrics_at.host, setup.metrics_at.port)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        log(f"metrics on http://{setup.metrics_at.with_port(port)}/metrics")
    try:
        if not live:
            return await _run(build(), stopped_by)
        with err_console.status("starting") as status:
            return await _run(build(status), stopped_by)
    finally:
        if setup.metrics is not None:
            setup.metrics.close()


async def _run(server: AggregationServer, stopped_by: list[signal.Signals]) -> list[RoundReport]:
    port = await server.start()
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        stopped_by.append(sig)
        server.request_shutdown(f"the server received {sig.name}")

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        secure = "plaintext" if server.credentials is None else "TLS"
        server.log(f"listening on {server.bind_address.with_port(port)} ({secure})")
        return await server.run()
    finally:
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)


def analytics_answer(spec: AnalyticsRound, report: RoundReport) -> AnalyticsResult:
    """The released answer of an analytics round, or why there is none."""
    if report.total is None:
        reason = report.abort_reason or "aborted"
        return withheld(spec, [], dict(report.dropped), reason, report.abort_detail)
    return release(spec, report.total, list(report.included), dict(report.dropped))
