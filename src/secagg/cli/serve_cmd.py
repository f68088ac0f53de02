"""``secagg serve``: the aggregation server over gRPC; writes the sum and a JSON report."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import grpc
from rich.status import Status

from secagg.analytics import AnalyticsResult, AnalyticsRound, release, withheld
from secagg.cli.analytics_io import analytics_options, load_spec, show_result, write_result
from secagg.cli.console import err_console, plain
from secagg.cli.jsonlog import json_logger
from secagg.cli.options import cli_wording, round_options
from secagg.cli.report_files import ReportFiles
from secagg.cli.shards_cmd import serve_sharded, shard_options
from secagg.cli.spec_file import load_spec_file
from secagg.encoding.context import context_file_digest
from secagg.errors import ConfigError, OutputError, UnsafeParametersError
from secagg.identity.registry import load_registry
from secagg.protocol.config import Mode, RoundConfig
from secagg.transport.address import DEFAULT_PORT, Address, parse_address
from secagg.transport.codec import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_MESSAGE_BYTES
from secagg.transport.metrics import ServerMetrics
from secagg.transport.server import (
    DEFAULT_MAX_DIM,
    AggregationServer,
    RoundReport,
    ServerOptions,
)
from secagg.transport.tls import server_credentials

__all__ = ["serve_command"]


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _address(_ctx: click.Context, _param: click.Parameter, value: str) -> Address:
    try:
        return parse_address(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("serve")
@click.option(
    "--address",
    default=f"127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    callback=_address,
    help=f"HOST[:PORT] to listen on; the port defaults to {DEFAULT_PORT}, 0 picks a free one.",
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
    help="Vector length every client must send (a Hello with another length is refused); "
    "required unless --query or --spec fixes it.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the sums and reports (written as each round ends).",
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
    "--keys-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a welcomed client has to advertise its keys before a waiting client "
    "takes its place (semi-honest mode).",
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
    default=DEFAULT_MAX_DIM,
    show_default=True,
    help="Largest --dim accepted; raise it for longer vectors if the server has the memory "
    "(about 3 x dim x 4 bytes at --bits <= 32, twice that above).",
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
@click.option(
    "--task",
    "task_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file (e.g. the model) handed to every client of every round after Welcome; its "
    "digest goes into the round config, so clients check what they received.",
)
@click.option(
    "--metrics-address",
    default=None,
    help="HOST:PORT to serve Prometheus metrics on (/metrics; needs the 'metrics' extra).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line with round number and id (no secrets, ever).",
)
@click.option(
    "--max-waiting",
    type=click.IntRange(1),
    default=None,
    help="Most clients waiting to join at once; more are refused with server-full "
    "(default: 4 x --clients + 16).",
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
@shard_options
def serve_command(
    address: Address,
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
    keys_timeout: float,
    upload_idle_timeout: float,
    max_message_bytes: int,
    chunk_bytes: int,
    max_dim: int,
    registry_path: Path | None,
    context_path: Path | None,
    task_path: Path | None,
    metrics_address: str | None,
    log_format: str,
    max_waiting: int | None,
    insecure: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    query_path: Path | None,
    epsilon: float | None,
    delta: float,
    min_contributors: int | None,
    shards: int | None = None,
    min_shard_size: int = 100,
    ray_address: str | None = None,
) -> None:
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
    if shards is not None:  # a sharded round: see secagg.cli.shards_cmd
        serve_sharded(click.get_current_context().params)
        return
    if ray_address is not None:
        raise click.UsageError("--ray-address places shards: it needs --shards")
    if old_dropout_rate is not None:
        click.echo("secagg serve: --dropout-rate is now --design-dropout-rate", err=True)
        dropout_rate = old_dropout_rate
    round_spec = b"" if spec_path is None else load_spec_file(spec_path)
    bits = _spec_bits(round_spec, bits)
    if insecure and (tls_cert or tls_key):
        raise click.UsageError("--insecure excludes --tls-cert/--tls-key")
    if (mode == "malicious") != (registry_path is not None):
        raise click.UsageError("--registry goes with --mode malicious, and it needs one")
    if min_clients is not None and min_clients > clients:
        raise click.UsageError("--min-clients cannot exceed --clients")
    if task_path is not None and context_path is not None:
        raise click.UsageError("--task binds the task itself: drop --context")
    spec = load_spec(query_path, epsilon, delta, min_contributors)
    if spec is not None:
        bits, dim = spec.bits, spec.query.dim
        if rounds != 1:
            raise click.UsageError("--query answers one round: drop --rounds")
        if clients > spec.max_clients:
            raise click.UsageError(f"the query's round allows at most {spec.max_clients} clients")
        if context_path is not None or task_path is not None:
            raise click.UsageError("--query binds the query itself: drop --context/--task")
        if round_spec:
            raise click.UsageError("--query and --spec both say what the vectors mean: give one")
    else:
        dim = _spec_dim(round_spec, dim)
    if dim > max_dim:
        raise click.UsageError(
            f"--dim {dim} exceeds --max-dim {max_dim}; raise --max-dim if the server has "
            f"the memory for about 3 vectors of {dim} words"
        )
    _check_parameters(clients, dim, bits, degree, threshold, mode, dropout_rate, allow_unsafe)
    credentials = None
    if not insecure:
        if tls_cert is None or tls_key is None:
            raise click.UsageError("TLS needs --tls-cert and --tls-key (or --insecure)")
        try:
            credentials = server_credentials(tls_cert, tls_key)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    options = ServerOptions(
        clients=clients,
        dim=dim,
        bits=bits,
        min_clients=min_clients,
        degree=degree,
        threshold=threshold,
        mode=mode,
        dropout_rate=dropout_rate,
        allow_unsafe=allow_unsafe,
        rounds=rounds,
        join_timeout=join_timeout,
        phase_timeout=phase_timeout,
        keys_timeout=keys_timeout,
        upload_idle_timeout=upload_idle_timeout,
        max_message_bytes=max_message_bytes,
        chunk_bytes=min(chunk_bytes, max_message_bytes - 1024),
        max_dim=max_dim,
        max_waiting=max_waiting,
        registry=None if registry_path is None else load_registry(registry_path),
        context_digest=(
            spec.digest()
            if spec is not None
            else None
            if context_path is None
            else context_file_digest(context_path)
        ),
        spec=round_spec,
    )
    files = ReportFiles(output, started=time.time(), defaults={"bits": bits, "dim": dim})
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
        answer = _answer(spec, report)
        answers.append(answer)
        files.add(report, keep_sum=answer.released)

    task = None
    if task_path is not None:
        try:
            task = task_path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(str(exc.strerror or exc), param_hint="'--task'") from None
    metrics = None
    if metrics_address is not None:
        try:
            metrics_at = parse_address(metrics_address)
            metrics = ServerMetrics()
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="'--metrics-address'") from None
    stopped_by: list[signal.Signals] = []
    setup = _Setup(task, metrics, None if metrics is None else metrics_at, log_format)
    reports = asyncio.run(_serve(options, address, credentials, on_round, stopped_by, setup))
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


@dataclass(frozen=True)
class _Setup:
    """What an operator added to the server: a task, metrics, the log format."""

    task: bytes | None
    metrics: ServerMetrics | None
    metrics_at: Address | None
    log_format: str


async def _serve(
    options: ServerOptions,
    address: Address,
    credentials: grpc.ServerCredentials | None,
    on_round: Callable[[RoundReport], None],
    stopped_by: list[signal.Signals],
    setup: _Setup,
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


def _answer(spec: AnalyticsRound, report: RoundReport) -> AnalyticsResult:
    """The released answer of an analytics round, or why there is none."""
    if report.total is None:
        reason = report.abort_reason or "aborted"
        return withheld(spec, [], dict(report.dropped), reason, report.abort_detail)
    return release(spec, report.total, list(report.included), dict(report.dropped))
