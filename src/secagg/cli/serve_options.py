"""The command-line options of ``secagg serve``, as one decorator (the command stays short)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from secagg.cli.analytics_io import analytics_options
from secagg.cli.options import round_options
from secagg.errors import ConfigError
from secagg.transport.address import DEFAULT_PORT, Address, parse_address
from secagg.transport.codec import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_MESSAGE_BYTES
from secagg.transport.server_options import DEFAULT_MAX_DIM

__all__ = ["serve_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _address(_ctx: click.Context, _param: click.Parameter, value: str) -> Address:
    try:
        return parse_address(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


# The options, in --help order: what the server runs, its limits and deadlines, its files.
_WHAT: list[Callable[[Any], Any]] = [
    click.option(
        "--address",
        default=f"127.0.0.1:{DEFAULT_PORT}",
        show_default=True,
        callback=_address,
        help=(
            f"HOST[:PORT] to listen on; the port defaults to {DEFAULT_PORT}, 0 picks a free one."
        ),
    ),
    click.option(
        "--clients",
        "-n",
        type=click.IntRange(2),
        required=True,
        help="Clients expected per round.",
    ),
    click.option(
        "--min-clients",
        type=click.IntRange(2),
        default=None,
        help="Start with this many once the join deadline passed (default: all --clients).",
    ),
    round_options("Threat model (malicious needs --registry)."),
    click.option(
        "--dim",
        "-d",
        type=click.IntRange(1),
        default=None,
        help="Vector length every client must send (a Hello with another length is refused); "
        "required unless --query or --spec fixes it.",
    ),
    click.option(
        "--output",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="Directory for the sums and reports (written as each round ends).",
    ),
    click.option(
        "--rounds",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Aggregation rounds to run (clients join each one anew).",
    ),
    click.option(
        "--design-dropout-rate",
        "dropout_rate",
        type=click.FloatRange(0, 0.5),
        default=0.05,
        show_default=True,
        help="Dropout rate the parameter finder designs k and t for (drops no one).",
    ),
    click.option(
        "--dropout-rate",
        "old_dropout_rate",
        type=click.FloatRange(0, 0.5),
        default=None,
        hidden=True,
        help="Deprecated name of --design-dropout-rate.",
    ),
]

_LIMITS: list[Callable[[Any], Any]] = [
    click.option(
        "--spec",
        "spec_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="JSON round spec announced to clients (what the vectors mean, e.g. an Encoder's "
        "round_spec); it fixes b and D. Default: raw integers.",
    ),
    click.option(
        "--join-timeout",
        type=click.FloatRange(0.1),
        default=60.0,
        show_default=True,
        help="Seconds to wait for clients to join each round.",
    ),
    click.option(
        "--phase-timeout",
        type=click.FloatRange(0.1),
        default=30.0,
        show_default=True,
        help="Deadline in seconds for each protocol round's messages.",
    ),
    click.option(
        "--keys-timeout",
        type=click.FloatRange(0.1),
        default=10.0,
        show_default=True,
        help="Seconds a welcomed client has to advertise its keys before a waiting client "
        "takes its place (semi-honest mode).",
    ),
    click.option(
        "--upload-idle-timeout",
        type=click.FloatRange(0.1),
        default=10.0,
        show_default=True,
        help="Longest pause between two chunks of one masked input.",
    ),
    click.option(
        "--max-message-bytes",
        type=click.IntRange(64 * 1024),
        default=DEFAULT_MAX_MESSAGE_BYTES,
        show_default=True,
        help="Largest frame accepted; larger vectors come in chunks.",
    ),
    click.option(
        "--chunk-bytes",
        type=click.IntRange(4096),
        default=DEFAULT_CHUNK_BYTES,
        show_default=True,
        help="Chunk size asked of clients for masked inputs.",
    ),
    click.option(
        "--max-dim",
        type=click.IntRange(1),
        default=DEFAULT_MAX_DIM,
        show_default=True,
        help="Largest --dim accepted; raise it for longer vectors if the server has the memory "
        "(about 3 x dim x 4 bytes at --bits <= 32, twice that above).",
    ),
    click.option(
        "--registry",
        "registry_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Malicious mode: the identity registry (names -> Ed25519 keys) of who may join.",
    ),
]

_FILES: list[Callable[[Any], Any]] = [
    click.option(
        "--context",
        "context_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="The file handed to the clients for this round (e.g. the model); its digest goes "
        "into the round config and clients given another file abort.",
    ),
    click.option(
        "--task",
        "task_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A file (e.g. the model) handed to every client of every round after Welcome; its "
        "digest goes into the round config, so clients check what they received.",
    ),
    click.option(
        "--metrics-address",
        default=None,
        help="HOST:PORT to serve Prometheus metrics on (/metrics; needs the 'metrics' extra).",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: one JSON object per line with round number and id (no secrets, ever).",
    ),
    click.option(
        "--max-waiting",
        type=click.IntRange(1),
        default=None,
        help="Most clients waiting to join at once; more are refused with server-full "
        "(default: 4 x --clients + 16).",
    ),
    click.option(
        "--workers",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Worker processes for unmasking (mask expansion split along the vector).",
    ),
    click.option("--insecure", is_flag=True, help="Plaintext gRPC (loopback testing only)."),
    click.option(
        "--tls-cert",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="PEM certificate chain of the server.",
    ),
    click.option(
        "--tls-key",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="PEM private key of the server.",
    ),
    analytics_options,
]


def serve_options(func: F) -> F:
    """Every ``secagg serve`` option, in --help order."""
    for decorator in reversed([*_WHAT, *_LIMITS, *_FILES]):
        func = decorator(func)
    return func
