"""``secagg client``: take part in one aggregation round with a vector from a ``.npy`` file,
or, with ``--query``/``--values``, contribute raw values to an analytics query."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from secagg.analytics import Contributor
from secagg.cli.analytics_io import analytics_options, load_spec, read_values
from secagg.cli.console import err_console
from secagg.encoding.ring import to_ring
from secagg.identity_registry import load_identity, load_registry
from secagg.protocol.messages import Round
from secagg.reasons import AbortReason
from secagg.simulation import parse_dropout_round
from secagg.transport.client import Client, Outcome

__all__ = ["client_command"]


@click.command("client")
@click.option("--server", "-s", required=True, help="The server's HOST:PORT.")
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
    "--identity",
    "identity_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Malicious mode: this client's identity key file (from 'secagg keys generate').",
)
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Malicious mode: the trusted identity registry, received out of band.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@click.option("--stall-at", default=None, hidden=True, help="Testing: stop answering at a round.")
def client_command(
    server: str,
    input_path: Path,
    name: str | None,
    insecure: bool,
    ca_cert: Path | None,
    tls_server_name: str | None,
    timeout: float,
    identity_path: Path | None,
    registry_path: Path | None,
    as_json: bool,
    stall_at: str | None,
    values_path: Path | None,
    query_path: Path | None,
    epsilon: float | None,
    delta: float,
    min_contributors: int | None,
) -> None:
    """Join a round at SERVER with the vector in INPUT; exit 0 when it was included.

    With --query and --values the vector is this client's capped (and, with --epsilon,
    noised) contribution to that query, and the client refuses a round about anything else.
    """
    if insecure and (ca_cert or tls_server_name):
        raise click.UsageError("--insecure excludes --ca-cert/--tls-server-name")
    spec = load_spec(query_path, epsilon, delta, min_contributors)
    if (spec is None) == (input_path is None) or (spec is None) != (values_path is None):
        raise click.UsageError("give either --input, or --query with --values")
    expected_digest = None
    if spec is not None and values_path is not None:
        vector = to_ring(Contributor(spec).raw(read_values(values_path, spec)), spec.bits)
        expected_digest = spec.digest()
    else:
        assert input_path is not None
        vector = _load_vector(input_path)
    stall: Round | None = None if stall_at is None else parse_dropout_round(stall_at)

    def progress(line: str) -> None:
        print(f"secagg client {client.name}: {line}", file=sys.stderr, flush=True)

    client = Client(
        server,
        name=name,
        insecure=insecure,
        root_certificates=None if ca_cert is None else ca_cert.read_bytes(),
        tls_server_name=tls_server_name,
        timeout=timeout,
        progress=progress,
        stall_at=stall,
        identity=None if identity_path is None else load_identity(identity_path),
        registry=None if registry_path is None else load_registry(registry_path),
        expected_context_digest=expected_digest,
    )
    outcome = client.submit_sync(vector)
    if expected_digest is not None and outcome.reason == AbortReason.CONTEXT_MISMATCH:
        err_console.print(
            "[bold red]refused[/]: the server's round is not the configured query and release "
            f"rules (expected spec digest {expected_digest.hex()})"
        )
    if as_json:
        click.echo(json.dumps(outcome.to_json()))
    else:
        _print(outcome)
    if not outcome.included:
        sys.exit(1)


def _load_vector(input_path: Path) -> np.ndarray:
    try:
        vector: np.ndarray = np.load(input_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {input_path}: {exc}", param_hint="--input") from None
    if vector.ndim != 1 or vector.dtype.kind not in "iu":
        raise click.BadParameter(
            f"{input_path} must hold a 1-D integer vector, got {vector.dtype} {vector.shape}",
            param_hint="--input",
        )
    return vector


def _print(outcome: Outcome) -> None:
    if outcome.included:
        err_console.print(
            f"[bold green]included[/]: {outcome.name} (client {outcome.index}) is in the sum of "
            f"{outcome.num_included} clients; sent {outcome.bytes_sent:,} bytes "
            f"in {outcome.seconds:.2f}s"
        )
    else:
        err_console.print(
            f"[bold red]not included[/]: {outcome.name}: {outcome.reason}: {outcome.detail}"
        )
