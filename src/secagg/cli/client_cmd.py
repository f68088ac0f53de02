"""``secagg client``: take part in one aggregation round with a vector from a ``.npy`` file,
or, with ``--query``/``--values``, contribute raw values to an analytics query.

Everything the client is handed is checked before it connects (the vector, the CA file, the
context file); everything the server sends back is escaped before it is printed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy.typing as npt

from secagg.analytics import AnalyticsRound, Contributor
from secagg.cli.analytics_io import analytics_options, load_spec, read_values
from secagg.cli.console import err_console
from secagg.cli.explain import describe, peer_text
from secagg.cli.inputs import load_ca_certificates, load_input_vector
from secagg.cli.shards_cmd import coordinator_option, shard_server
from secagg.cli.task_input import command_input, fixed_input
from secagg.crypto.ring import to_ring
from secagg.encoding.context import context_file_digest
from secagg.identity.registry import load_identity, load_registry
from secagg.protocol.messages import Round
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason
from secagg.transport.client import ANNOUNCED, Client, Outcome, local_input_problem

__all__ = ["client_command"]


@click.command("client")
@click.option("--server", "-s", default=None, help="The server's HOST:PORT.")
@coordinator_option
@click.option(
    "--input",
    "-i",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A .npy file holding a 1-D vector of integers mod 2^bits (or use --query/--values).",
)
@click.option(
    "--values",
    "values_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Analytics: this client's raw values, a JSON list or one value per line.",
)
@analytics_options
@click.option("--name", default=None, help="This client's name (default: host-pid).")
@click.option("--insecure", is_flag=True, help="Plaintext gRPC (loopback testing only).")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA certificate to verify the server with (default: system roots).",
)
@click.option("--tls-server-name", default=None, help="Expected name in the server's certificate.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=600.0,
    show_default=True,
    help="Seconds to wait for each server message.",
)
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Seconds to keep retrying (with backoff) while no server is up.",
)
@click.option(
    "--bits",
    "-b",
    type=click.IntRange(1, 64),
    default=None,
    help="The round's bit width: the input is checked against it before joining, and a "
    "round with another one is refused.",
)
@click.option(
    "--dim",
    "-d",
    type=click.IntRange(1),
    default=None,
    help="The round's vector length, checked before joining.",
)
@click.option(
    "--context",
    "context_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The file this client was handed for the round (e.g. the model): the client aborts "
    "unless the server announced this file's digest.",
)
@click.option(
    "--identity",
    "identity_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Malicious mode: this client's identity key file (from 'secagg keys generate'); "
    "with it the client refuses semi-honest rounds.",
)
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Malicious mode: the trusted identity registry, received out of band.",
)
@click.option(
    "--assume-corrupt-rate",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    show_default=True,
    help="Fraction of clients this client assumes corrupt when judging the server's k and t.",
)
@click.option(
    "--assume-dropout-rate",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    show_default=True,
    help="Fraction of clients this client assumes drop out when judging the server's k and t.",
)
@click.option(
    "--allow-weak-parameters",
    is_flag=True,
    help="DANGER: accept a degree and threshold below this client's privacy floor.",
)
@click.option(
    "--announced-encoding",
    is_flag=True,
    help="INPUT holds floats: encode them with the encoding spec the round announces "
    "(refuses a round without one).",
)
@click.option(
    "--weight",
    type=float,
    default=None,
    help="With --announced-encoding: this client's weight in a weighted round.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Join this many rounds one after another (the same input each time unless "
    "--task-command makes it from the round's task).",
)
@click.option(
    "--task-command",
    default=None,
    help="Run this command for each round: it reads the round's task from the file named by "
    "$SECAGG_TASK and writes its .npy vector to $SECAGG_OUTPUT ($SECAGG_ROUND is the round); "
    "replaces --input.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print each round's outcome as one JSON object."
)
@click.option("--stall-at", default=None, hidden=True, help="Testing: stop answering at a round.")
def client_command(**kwargs: Any) -> None:
    """Join a round at SERVER with the vector in INPUT; exit 0 when it was included.

    With --query and --values the vector is this client's capped (and, with --epsilon,
    noised) contribution to that query, and the client refuses a round about anything else.

    The client judges the server's degree and threshold itself: their privacy failure bound,
    with the assumed corrupt and dropout rates, must be at most 2^-40, or the client refuses
    with reason unsafe-parameters before revealing anything.
    """
    args = _Args(**kwargs)
    spec = _check_usage(args)
    vector, expected_digest = _input(args, spec)
    client = _client(args, expected_digest)

    def show(outcome: Outcome) -> None:
        if expected_digest is not None and outcome.reason == AbortReason.CONTEXT_MISMATCH:
            err_console.print(
                "[bold red]refused[/]: the server's round is not the configured query and "
                f"release rules (expected spec digest {expected_digest.hex()})"
            )
        if args.as_json:
            click.echo(json.dumps(outcome.to_json()))
        else:
            _print(outcome)

    if args.rounds == 1 and args.task_command is None:
        assert vector is not None
        if args.announced_encoding:
            outcomes = [client.submit_sync(vector, encoder=ANNOUNCED, weight=args.weight)]
        else:
            outcomes = [client.submit_sync(vector)]
        show(outcomes[0])
    else:
        task_command = args.task_command
        fn = fixed_input(vector) if task_command is None else command_input(task_command)
        outcomes = client.participate_sync(fn, rounds=args.rounds, on_outcome=show)
    if len(outcomes) < args.rounds or not all(o.included for o in outcomes):
        sys.exit(1)


@dataclass
class _Args:
    """The command line of ``secagg client``, as parsed by click."""

    server: str | None
    input_path: Path | None
    name: str | None
    insecure: bool
    ca_cert: Path | None
    tls_server_name: str | None
    timeout: float
    wait: float
    bits: int | None
    dim: int | None
    context_path: Path | None
    identity_path: Path | None
    registry_path: Path | None
    assume_corrupt_rate: float
    assume_dropout_rate: float
    allow_weak_parameters: bool
    announced_encoding: bool
    weight: float | None
    rounds: int
    task_command: str | None
    as_json: bool
    stall_at: str | None
    values_path: Path | None
    query_path: Path | None
    epsilon: float | None
    delta: float
    min_contributors: int | None
    coordinator: str | None = None


def _check_usage(args: _Args) -> AnalyticsRound | None:
    """Refuse contradictory options; returns the analytics query, if any."""
    if args.insecure and (args.ca_cert or args.tls_server_name):
        raise click.UsageError("--insecure excludes --ca-cert/--tls-server-name")
    if (args.identity_path is None) != (args.registry_path is None):
        raise click.UsageError("--identity and --registry go together (malicious mode)")
    if args.weight is not None and not args.announced_encoding:
        raise click.UsageError("--weight needs --announced-encoding (integers carry no weight)")
    spec = load_spec(args.query_path, args.epsilon, args.delta, args.min_contributors)
    if args.task_command is not None:
        if args.input_path is not None or spec is not None:
            raise click.UsageError("--task-command makes the input: drop --input/--query")
        if args.dim is None:
            raise click.UsageError("--task-command needs --dim (the round's vector length)")
    elif (spec is None) == (args.input_path is None) or (spec is None) != (
        args.values_path is None
    ):
        raise click.UsageError("give either --input, or --query with --values")
    if spec is not None and args.context_path is not None:
        raise click.UsageError("--query binds the query itself: drop --context")
    if spec is not None and args.announced_encoding:
        raise click.UsageError("--announced-encoding encodes --input floats, not a --query")
    if args.announced_encoding and (args.rounds > 1 or args.task_command is not None):
        raise click.UsageError("--announced-encoding joins one round: drop --rounds/--task-command")
    return spec


def _input(
    args: _Args, spec: AnalyticsRound | None
) -> tuple[npt.NDArray[Any] | None, bytes | None]:
    """The vector to submit (None: made per round) and the context digest to expect."""
    expected_digest = None if args.context_path is None else context_file_digest(args.context_path)
    vector = None
    if spec is not None and args.values_path is not None:
        vector = to_ring(Contributor(spec).raw(read_values(args.values_path, spec)), spec.bits)
        expected_digest = spec.digest()
    elif args.input_path is not None:
        vector = load_input_vector(args.input_path, floats=args.announced_encoding)
    # Floats are checked by the announced encoder once the round's spec is known.
    if vector is not None and not args.announced_encoding:
        problem = local_input_problem(vector, args.bits, args.dim)
        if problem is not None:
            raise click.BadParameter(f"{args.input_path}: {problem[1]}", param_hint="--input")
    if args.dim is None and vector is not None and args.rounds > 1:
        args.dim = int(vector.shape[0])  # the repeated rounds' D is the input's length
    return vector, expected_digest


def _client(args: _Args, expected_digest: bytes | None) -> Client:
    """The Client the command line describes (credentials, identity, policy, checks)."""
    roots = None if args.ca_cert is None else load_ca_certificates(args.ca_cert)
    stall: Round | None = None if args.stall_at is None else Round.parse(args.stall_at)
    policy = ClientPolicy(
        corrupt_rate=args.assume_corrupt_rate,
        dropout_rate=args.assume_dropout_rate,
        allow_weak_parameters=args.allow_weak_parameters,
    )
    if args.allow_weak_parameters:
        err_console.print(
            "[bold red]WARNING[/]: --allow-weak-parameters: this client accepts any degree and "
            "threshold the server announces that obey the mode's rule; a malicious server "
            "may then learn this client's input"
        )

    def progress(line: str) -> None:
        print(f"secagg client {client.name}: {line}", file=sys.stderr, flush=True)

    # A sharded round: the coordinator names this client's shard (see secagg.cli.shards_cmd).
    server, name = shard_server(
        args.server, args.coordinator, args.name, args.insecure, roots, args.timeout, args.wait
    )
    client = Client(
        server,
        name=name,
        insecure=args.insecure,
        root_certificates=roots,
        tls_server_name=args.tls_server_name,
        timeout=args.timeout,
        wait=args.wait,
        progress=progress,
        stall_at=stall,
        identity=None if args.identity_path is None else load_identity(args.identity_path),
        registry=None if args.registry_path is None else load_registry(args.registry_path),
        expected_context_digest=expected_digest,
        bits=args.bits,
        dim=args.dim,
        policy=policy,
    )
    return client


def _print(outcome: Outcome) -> None:
    name = peer_text(outcome.name)
    if outcome.included:
        err_console.print(
            f"[bold green]included[/]: {name} (client {outcome.index}) is in the sum of "
            f"{outcome.num_included} clients; sent {outcome.bytes_sent:,} bytes "
            f"in {outcome.seconds:.2f}s"
        )
    else:
        err_console.print(
            f"[bold red]not included[/]: {name}: {describe(outcome.reason, outcome.detail)}",
            soft_wrap=True,
        )
