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

from secagg.cli.console import err_console
from secagg.cli.decoded_output import write_decoded
from secagg.cli.options import check_round_options, cli_wording, round_options
from secagg.cli.spec_file import load_spec_file
from secagg.context import context_file_digest
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
    "--design-dropout-rate",
    "dropout_rate",
    type=click.FloatRange(0, 0.5),
    default=0.05,
    show_default=True,
    help="Dropout rate the parameter finder designs k and t for (drops no one).",
)
@click.option(
    "--dropout-rate",
    "old_dropout_rate",
    type=click.FloatRange(0, 0.5),
    default=None,
    hidden=True,
    help="Deprecated name of --design-dropout-rate.",
)
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON round spec announced to clients (what the vectors mean, e.g. an Encoder's "
    "round_spec); it fixes b and D. Default: raw integers.",
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
@click.option(
    "--context",
    "context_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The file handed to the clients for this round (e.g. the model); its digest goes "
    "into the round config and clients given another file abort.",
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
    old_dropout_rate: float | None,
    spec_path: Path | None,
    allow_unsafe: bool,
    join_timeout: float,
    phase_timeout: float,
    upload_idle_timeout: float,
    max_message_bytes: int,
    chunk_bytes: int,
    max_dim: int,
    registry_path: Path | None,
    context_path: Path | None,
    insecure: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Run aggregation rounds for clients connecting over gRPC.

    Writes OUTPUT/sum.npy (the last sum) and OUTPUT/report.json; exits 0 when every round
    produced a sum, 1 with the abort reason otherwise.
    """
    if old_dropout_rate is not None:
        click.echo("secagg serve: --dropout-rate is now --design-dropout-rate", err=True)
        dropout_rate = old_dropout_rate
    spec = b"" if spec_path is None else load_spec_file(spec_path)
    bits = _spec_bits(spec, bits)
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
    check_round_options(clients, degree, threshold, mode, allow_unsafe)
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
        context_digest=None if context_path is None else context_file_digest(context_path),
        spec=spec,
    )
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    reports = asyncio.run(_serve(options, address, credentials))
    _write(output, reports, started, options)
    failed = [r for r in reports if r.status != "complete"]
    if failed:
        first = failed[0]
        raise click.ClickException(
            f"round {first.round} aborted ({first.abort_reason}): "
            f"{cli_wording(first.abort_detail)}"
        )


def _spec_bits(spec: bytes, bits: int) -> int:
    """The spec's bit width, unless --bits was given explicitly and differs (an error)."""
    if not spec:
        return bits
    wanted = json.loads(spec).get("bits")
    if not isinstance(wanted, int):
        return bits
    ctx = click.get_current_context()
    explicit = ctx.get_parameter_source("bits") is not click.core.ParameterSource.DEFAULT
    if explicit and wanted != bits:
        raise click.UsageError(f"--bits {bits} contradicts the spec's bits={wanted}")
    return wanted


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


def _write(
    output: Path, reports: list[RoundReport], started: float, options: ServerOptions
) -> None:
    last = next((r for r in reversed(reports) if r.total is not None), None)
    for r in reports:
        if r.total is not None and len(reports) > 1:
            np.save(output / f"sum-round-{r.round}.npy", r.total)
    if last is not None and last.total is not None:
        np.save(output / "sum.npy", last.total)
    decoded = None if last is None else write_decoded(output, options.spec, last)
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
        "spec": json.loads(options.spec) if options.spec else None,
        "spec_digest": final.spec_digest.hex(),
        "decoded": decoded,
        "timings": final.timings,
        "sum_file": "sum.npy" if last is not None else None,
        "started_at": started,
        "rounds": [r.to_json() for r in reports],
    }
    (output / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
