"""``secagg serve``: the aggregation server over gRPC; writes the sum and a JSON report."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import grpc

from secagg.analytics import AnalyticsResult, AnalyticsRound
from secagg.cli.analytics_io import load_spec, show_result, write_result
from secagg.cli.console import err_console, plain
from secagg.cli.options import cli_wording
from secagg.cli.report_files import ReportFiles
from secagg.cli.serve_options import serve_options
from secagg.cli.serve_run import Setup, analytics_answer, serve
from secagg.cli.shards_cmd import serve_sharded, shard_options
from secagg.cli.spec_file import load_spec_file
from secagg.encoding.context import context_file_digest
from secagg.errors import ConfigError, OutputError, UnsafeParametersError
from secagg.identity.registry import load_registry
from secagg.protocol.config import Mode, RoundConfig
from secagg.transport.address import Address, parse_address
from secagg.transport.metrics import ServerMetrics
from secagg.transport.server import RoundReport, ServerOptions
from secagg.transport.tls import server_credentials

__all__ = ["serve_command"]


@dataclass
class _Args:
    """The command line of ``secagg serve``, as parsed by click (see serve_options)."""

    address: Address
    clients: int
    min_clients: int | None
    bits: int
    dim: int | None
    output: Path
    rounds: int
    degree: int | None
    threshold: int | None
    mode: Mode
    dropout_rate: float
    old_dropout_rate: float | None
    spec_path: Path | None
    allow_unsafe: bool
    join_timeout: float
    phase_timeout: float
    keys_timeout: float
    upload_idle_timeout: float
    max_message_bytes: int
    chunk_bytes: int
    max_dim: int
    registry_path: Path | None
    context_path: Path | None
    task_path: Path | None
    metrics_address: str | None
    log_format: str
    max_waiting: int | None
    workers: int
    insecure: bool
    tls_cert: Path | None
    tls_key: Path | None
    query_path: Path | None
    epsilon: float | None
    delta: float
    min_contributors: int | None
    shards: int | None = None
    min_shard_size: int = 100
    ray_address: str | None = None


@click.command("serve")
@serve_options
@shard_options
def serve_command(**kwargs: Any) -> None:
    """Run aggregation rounds for clients connecting over gRPC.

    As each round ends, writes OUTPUT/report-round-N.json and OUTPUT/sum-round-N.npy, and
    replaces OUTPUT/report.json (all rounds so far) and OUTPUT/sum.npy (the latest sum).
    Exits 0 when every round produced a sum, 1 with the abort reason otherwise. SIGINT or
    SIGTERM ends the running round as interrupted (its clients are told server-shutdown),
    writes its report and exits 130 or 143.
    With --query the round answers that analytics query (its bit width and length come
    from the query): OUTPUT/analytics.json, OUTPUT/analytics.csv and a printed table, and no
    sum at all below --min-contributors.
    With --shards N the round runs as N shard servers behind a coordinator at --address
    (see docs/scaling.md).
    """
    if kwargs.get("shards") is not None:  # a sharded round: see secagg.cli.shards_cmd
        serve_sharded(click.get_current_context().params)
        return
    if kwargs.get("ray_address") is not None:
        raise click.UsageError("--ray-address places shards: it needs --shards")
    args = _Args(**kwargs)
    if args.old_dropout_rate is not None:
        click.echo("secagg serve: --dropout-rate is now --design-dropout-rate", err=True)
        args.dropout_rate = args.old_dropout_rate
    round_spec = b"" if args.spec_path is None else load_spec_file(args.spec_path)
    args.bits = _spec_bits(round_spec, args.bits)
    spec = _check_usage(args, round_spec)
    options = _options(args, round_spec, spec)
    credentials = _credentials(args)
    files = ReportFiles(
        args.output, started=time.time(), defaults={"bits": options.bits, "dim": options.dim}
    )
    try:
        files.prepare()
    except OutputError as exc:
        raise click.BadParameter(str(exc), param_hint="'--output'") from None
    answers: list[AnalyticsResult] = []

    def on_round(report: RoundReport) -> None:
        if spec is None:
            files.add(report)
            return
        # The raw sum of a withheld analytics round is never written, not even for a moment.
        answer = analytics_answer(spec, report)
        answers.append(answer)
        files.add(report, keep_sum=answer.released)

    stopped_by: list[signal.Signals] = []
    setup = _setup(args)
    reports = asyncio.run(serve(options, args.address, credentials, on_round, stopped_by, setup))
    _conclude(args.output, reports, answers, stopped_by)


def _check_usage(args: _Args, round_spec: bytes) -> AnalyticsRound | None:
    """Refuse contradictory options; fixes ``args.dim``/``args.bits``; returns the query."""
    if args.insecure and (args.tls_cert or args.tls_key):
        raise click.UsageError("--insecure excludes --tls-cert/--tls-key")
    if (args.mode == "malicious") != (args.registry_path is not None):
        raise click.UsageError("--registry goes with --mode malicious, and it needs one")
    if args.min_clients is not None and args.min_clients > args.clients:
        raise click.UsageError("--min-clients cannot exceed --clients")
    if args.task_path is not None and args.context_path is not None:
        raise click.UsageError("--task binds the task itself: drop --context")
    spec = load_spec(args.query_path, args.epsilon, args.delta, args.min_contributors)
    if spec is not None:
        args.bits, args.dim = spec.bits, spec.query.dim
        if args.rounds != 1:
            raise click.UsageError("--query answers one round: drop --rounds")
        if args.clients > spec.max_clients:
            raise click.UsageError(f"the query's round allows at most {spec.max_clients} clients")
        if args.context_path is not None or args.task_path is not None:
            raise click.UsageError("--query binds the query itself: drop --context/--task")
        if round_spec:
            raise click.UsageError("--query and --spec both say what the vectors mean: give one")
    else:
        args.dim = _spec_dim(round_spec, args.dim)
    if args.dim > args.max_dim:
        raise click.UsageError(
            f"--dim {args.dim} exceeds --max-dim {args.max_dim}; raise --max-dim if the server "
            f"has the memory for about 3 vectors of {args.dim} words"
        )
    _check_parameters(
        args.clients, args.dim, args.bits, args.degree, args.threshold, args.mode,
        args.dropout_rate, args.allow_unsafe,
    )  # fmt: skip
    return spec


def _credentials(args: _Args) -> grpc.ServerCredentials | None:
    """TLS credentials from --tls-cert/--tls-key (None with --insecure)."""
    if args.insecure:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise click.UsageError("TLS needs --tls-cert and --tls-key (or --insecure)")
    try:
        return server_credentials(args.tls_cert, args.tls_key)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _options(args: _Args, round_spec: bytes, spec: AnalyticsRound | None) -> ServerOptions:
    """The server's options from the (checked) command line."""
    assert args.dim is not None  # _check_usage fixed it
    if spec is not None:
        digest: bytes | None = spec.digest()
    else:
        digest = None if args.context_path is None else context_file_digest(args.context_path)
    return ServerOptions(
        clients=args.clients,
        dim=args.dim,
        bits=args.bits,
        min_clients=args.min_clients,
        degree=args.degree,
        threshold=args.threshold,
        mode=args.mode,
        dropout_rate=args.dropout_rate,
        allow_unsafe=args.allow_unsafe,
        rounds=args.rounds,
        join_timeout=args.join_timeout,
        phase_timeout=args.phase_timeout,
        keys_timeout=args.keys_timeout,
        upload_idle_timeout=args.upload_idle_timeout,
        max_message_bytes=args.max_message_bytes,
        chunk_bytes=min(args.chunk_bytes, args.max_message_bytes - 1024),
        max_dim=args.max_dim,
        max_waiting=args.max_waiting,
        workers=args.workers,
        registry=None if args.registry_path is None else load_registry(args.registry_path),
        context_digest=digest,
        spec=round_spec,
    )


def _setup(args: _Args) -> Setup:
    """The task file's bytes and the metrics endpoint, read and parsed before serving."""
    task = None
    if args.task_path is not None:
        try:
            task = args.task_path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(str(exc.strerror or exc), param_hint="'--task'") from None
    if args.metrics_address is None:
        return Setup(task, None, None, args.log_format)
    try:
        metrics_at = parse_address(args.metrics_address)
        metrics = ServerMetrics()
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--metrics-address'") from None
    return Setup(task, metrics, metrics_at, args.log_format)


def _conclude(
    output: Path,
    reports: list[RoundReport],
    answers: list[AnalyticsResult],
    stopped_by: list[signal.Signals],
) -> None:
    """Exit as the rounds ended: by signal, without a released answer, or aborted."""
    if stopped_by:
        sig = stopped_by[0]
        err_console.print(
            plain(f"secagg serve: stopped by {sig.name}; report written to {output}/report.json")
        )
        sys.exit(128 + sig.value)  # the shell convention for "ended by this signal"
    if answers:
        answer = answers[-1]
        write_result(output, answer)
        show_result(answer)
        if not answer.released:
            raise click.ClickException(f"nothing released ({answer.reason}): {answer.detail}")
    failed = [r for r in reports if r.status != "complete"]
    if failed:
        first = failed[0]
        raise click.ClickException(
            f"round {first.round} aborted ({first.abort_reason}): {cli_wording(first.abort_detail)}"
        )


def _spec_dim(spec: bytes, dim: int | None) -> int:
    """--dim, or the spec's D when --dim is not given; both given must agree."""
    wanted = json.loads(spec).get("dim") if spec else None
    if dim is None:
        if not isinstance(wanted, int):
            raise click.UsageError(
                "Missing option '--dim' (or '--query' or '--spec', which fix it)"
            )
        return wanted
    if isinstance(wanted, int) and wanted != dim:
        raise click.UsageError(f"--dim {dim} contradicts the spec's dim={wanted}")
    return dim


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


def _check_parameters(
    clients: int,
    dim: int,
    bits: int,
    degree: int | None,
    threshold: int | None,
    mode: Mode,
    dropout_rate: float,
    allow_unsafe: bool,
) -> None:
    """Refuse impossible or unsafe parameters now, not after the clients joined."""
    try:
        RoundConfig.create(
            clients,
            dim,
            bits,
            degree=degree,
            threshold=threshold,
            mode=mode,
            dropout_rate=dropout_rate,
            allow_unsafe=allow_unsafe,
        )
    except UnsafeParametersError as exc:
        raise click.UsageError(f"{exc.problem} (pass --allow-unsafe to use it anyway)") from None
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
