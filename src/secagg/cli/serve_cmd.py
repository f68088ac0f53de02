"""``secagg serve``: the aggregation server over gRPC; writes the sum and a JSON report."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import grpc
import numpy as np

from secagg.analytics import AnalyticsResult, AnalyticsRound, release, withheld
from secagg.cli.analytics_io import analytics_options, load_spec, show_result, write_result
from secagg.cli.console import err_console
from secagg.cli.options import round_options
from secagg.identity_registry import load_registry
from secagg.protocol.config import Mode
from secagg.transport.codec import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_MESSAGE_BYTES
from secagg.transport.server import AggregationServer, RoundReport, ServerOptions

__all__ = ["serve_command"]


@click.command("serve")
@click.option(
    "--address",
    default="127.0.0.1:7443",
    show_default=True,
    help="HOST:PORT to listen on (port 0 picks a free port).",
)
@click.option(
    "--clients", "-n", type=click.IntRange(2), required=True, help="Clients expected per round."
)
@click.option(
    "--min-clients",
    type=click.IntRange(2),
    default=None,
    help="Start with this many once the join deadline passed (default: all --clients).",
)
@round_options("Threat model (malicious needs --registry).")
@click.option(
    "--dim",
    "-d",
    type=click.IntRange(1),
    default=None,
    help="Vector length (default: from clients).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for sum.npy and report.json.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Aggregation rounds to run (clients join each one anew).",
)
@click.option(
    "--dropout-rate",
    type=click.FloatRange(0, 0.5),
    default=0.05,
    show_default=True,
    help="Expected dropout rate for the parameter finder.",
)
@click.option(
    "--join-timeout",
    type=click.FloatRange(0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for clients to join each round.",
)
@click.option(
    "--phase-timeout",
    type=click.FloatRange(0.1),
    default=30.0,
    show_default=True,
    help="Deadline in seconds for each protocol round's messages.",
)
@click.option(
    "--upload-idle-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Longest pause between two chunks of one masked input.",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(64 * 1024),
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    help="Largest frame accepted; larger vectors come in chunks.",
)
@click.option(
    "--chunk-bytes",
    type=click.IntRange(4096),
    default=DEFAULT_CHUNK_BYTES,
    show_default=True,
    help="Chunk size asked of clients for masked inputs.",
)
@click.option(
    "--max-dim",
    type=click.IntRange(1),
    default=2**31,
    show_default=True,
    help="Largest vector length accepted.",
)
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Malicious mode: the identity registry (names -> Ed25519 keys) of who may join.",
)
@click.option("--insecure", is_flag=True, help="Plaintext gRPC (loopback testing only).")
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM certificate chain of the server.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of the server.",
)
@analytics_options
def serve_command(
    address: str,
    clients: int,
    min_clients: int | None,
    bits: int,
    dim: int | None,
    output: Path,
    rounds: int,
    degree: int | None,
    threshold: int | None,
    mode: Mode,
    dropout_rate: float,
    allow_unsafe: bool,
    join_timeout: float,
    phase_timeout: float,
    upload_idle_timeout: float,
    max_message_bytes: int,
    chunk_bytes: int,
    max_dim: int,
    registry_path: Path | None,
    insecure: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    query_path: Path | None,
    epsilon: float | None,
    delta: float,
    min_contributors: int | None,
) -> None:
    """Run aggregation rounds for clients connecting over gRPC.

    Writes OUTPUT/sum.npy (the last sum) and OUTPUT/report.json; exits 0 when every round
    produced a sum, 1 with the abort reason otherwise. With --query the round answers that
    analytics query (its bit width and length come from the query): OUTPUT/analytics.json,
    OUTPUT/analytics.csv and a printed table, and no sum at all below --min-contributors.
    """
    if insecure and (tls_cert or tls_key):
        raise click.UsageError("--insecure excludes --tls-cert/--tls-key")
    credentials = None
    if not insecure:
        if tls_cert is None or tls_key is None:
            raise click.UsageError("TLS needs --tls-cert and --tls-key (or --insecure)")
        credentials = grpc.ssl_server_credentials([(tls_key.read_bytes(), tls_cert.read_bytes())])
    if (mode == "malicious") != (registry_path is not None):
        raise click.UsageError("--registry goes with --mode malicious, and it needs one")
    if min_clients is not None and min_clients > clients:
        raise click.UsageError("--min-clients cannot exceed --clients")
    spec = load_spec(query_path, epsilon, delta, min_contributors)
    if spec is not None:
        bits, dim = spec.bits, spec.query.dim
        if rounds != 1:
            raise click.UsageError("--query answers one round: drop --rounds")
        if clients > spec.max_clients:
            raise click.UsageError(f"the query's round allows at most {spec.max_clients} clients")
    options = ServerOptions(
        clients=clients,
        bits=bits,
        min_clients=min_clients,
        dim=dim,
        degree=degree,
        threshold=threshold,
        mode=mode,
        dropout_rate=dropout_rate,
        allow_unsafe=allow_unsafe,
        rounds=rounds,
        join_timeout=join_timeout,
        phase_timeout=phase_timeout,
        upload_idle_timeout=upload_idle_timeout,
        max_message_bytes=max_message_bytes,
        chunk_bytes=min(chunk_bytes, max_message_bytes - 1024),
        max_dim=max_dim,
        registry=None if registry_path is None else load_registry(registry_path),
        context_digest=None if spec is None else spec.digest(),
    )
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    reports = asyncio.run(_serve(options, address, credentials))
    answer = None if spec is None else _answer(spec, reports[-1])
    _write(output, reports, started, options, keep_sum=answer is None or answer.released)
    if answer is not None:
        write_result(output, answer)
        show_result(answer)
        if not answer.released:
            raise click.ClickException(f"nothing released ({answer.reason}): {answer.detail}")
    failed = [r for r in reports if r.status != "complete"]
    if failed:
        first = failed[0]
        raise click.ClickException(
            f"round {first.round} aborted ({first.abort_reason}): {first.abort_detail}"
        )


async def _serve(
    options: ServerOptions, address: str, credentials: grpc.ServerCredentials | None
) -> list[RoundReport]:
    live = err_console.is_terminal

    def log(line: str) -> None:
        if live:
            err_console.log(line)
        else:
            print(f"secagg serve: {line}", file=sys.stderr, flush=True)

    if not live:
        return await _run(AggregationServer(options, address, credentials=credentials, log=log))
    with err_console.status("starting") as status:
        server = AggregationServer(
            options, address, credentials=credentials, log=log, status=status.update
        )
        return await _run(server)


async def _run(server: AggregationServer) -> list[RoundReport]:
    port = await server.start()
    host = server.address.rsplit(":", 1)[0]
    secure = "plaintext" if server.credentials is None else "TLS"
    server.log(f"listening on {host}:{port} ({secure})")
    return await server.run()


def _answer(spec: AnalyticsRound, report: RoundReport) -> AnalyticsResult:
    """The released answer of an analytics round, or why there is none."""
    if report.total is None:
        reason = report.abort_reason or "aborted"
        return withheld(spec, [], dict(report.dropped), reason, report.abort_detail)
    return release(spec, report.total, list(report.included), dict(report.dropped))


def _write(
    output: Path,
    reports: list[RoundReport],
    started: float,
    options: ServerOptions,
    *,
    keep_sum: bool = True,
) -> None:
    """report.json, and the sums (not when an analytics release was withheld)."""
    last = next((r for r in reversed(reports) if r.total is not None), None)
    if not keep_sum:
        last = None
    for r in reports:
        if keep_sum and r.total is not None and len(reports) > 1:
            np.save(output / f"sum-round-{r.round}.npy", r.total)
    if last is not None and last.total is not None:
        np.save(output / "sum.npy", last.total)
    final = reports[-1]
    summary: dict[str, Any] = {
        "status": final.status,
        "abort_reason": final.abort_reason,
        "abort_detail": final.abort_detail,
        "round_id": final.round_id,
        "included": final.included,
        "dropped": final.dropped,
        "late": final.late,
        "bits": final.config.get("bits", options.bits),
        "dim": final.config.get("dim", options.dim),
        "clients": final.config.get("clients"),
        "threshold": final.config.get("threshold"),
        "degree": final.config.get("degree"),
        "mode": final.config.get("mode"),
        "timings": final.timings,
        "sum_file": "sum.npy" if last is not None else None,
        "started_at": started,
        "rounds": [r.to_json() for r in reports],
    }
    (output / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
