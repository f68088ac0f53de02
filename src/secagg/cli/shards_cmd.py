"""``secagg serve --shards N``: a sharded round (see :mod:`secagg.sharding`).

``--address`` is then the coordinator's: clients run ``secagg client --coordinator ADDRESS``
and are sent to their shard. The shards are ``secagg serve`` processes on this machine, or
with ``--ray-address`` on the nodes of a Ray cluster. ``--output`` gets the combined
``report.json`` and ``sum.npy``, each shard's files under ``shard-I/``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from secagg.cli.console import err_console, plain
from secagg.errors import ConfigError

__all__ = ["coordinator_option", "serve_sharded", "shard_options", "shard_server"]

F = TypeVar("F", bound=Callable[..., Any])

# serve options handed to every shard unchanged: (parameter, flag)
_PASSED = (
    ("bits", "--bits"),
    ("dim", "--dim"),
    ("mode", "--mode"),
    ("dropout_rate", "--design-dropout-rate"),
    ("spec_path", "--spec"),
    ("join_timeout", "--join-timeout"),
    ("phase_timeout", "--phase-timeout"),
    ("keys_timeout", "--keys-timeout"),
    ("upload_idle_timeout", "--upload-idle-timeout"),
    ("max_message_bytes", "--max-message-bytes"),
    ("chunk_bytes", "--chunk-bytes"),
    ("max_dim", "--max-dim"),
    ("registry_path", "--registry"),
    ("context_path", "--context"),
    ("task_path", "--task"),
    ("tls_cert", "--tls-cert"),
    ("tls_key", "--tls-key"),
)
_FLAGS = (("insecure", "--insecure"), ("allow_unsafe", "--allow-unsafe"))
# serve options a sharded round cannot honour as such
_REFUSED = (
    ("min_clients", "--min-clients (each shard needs --min-shard-size)"),
    ("degree", "--degree (each shard's finder picks k for its size)"),
    ("threshold", "--threshold (each shard's finder picks t for its size)"),
    ("query_path", "--query"),
    ("metrics_address", "--metrics-address"),
)


def shard_options(func: F) -> F:
    """--shards, --min-shard-size and --ray-address, as one decorator for ``serve``."""
    for option in reversed(
        (
            click.option(
                "--shards",
                type=click.IntRange(1),
                default=None,
                help="Run the round as N shards (N secagg serve processes); --address is "
                "then the coordinator clients ask for their shard (client --coordinator).",
            ),
            click.option(
                "--min-shard-size",
                type=click.IntRange(2),
                default=100,
                show_default=True,
                help="With --shards: a shard with fewer included clients is discarded, never "
                "released.",
            ),
            click.option(
                "--ray-address",
                default=None,
                help="With --shards: host the shards on this Ray cluster's nodes ('auto': "
                "the running one; needs the 'ray' extra).",
            ),
        )
    ):
        func = option(func)
    return func


def serve_sharded(params: dict[str, Any]) -> None:
    """Run ``secagg serve --shards N`` with the serve command's parsed ``params``."""
    # Imported here: an unsharded `secagg serve` or `secagg client` never loads them.
    from secagg.sharding.run import ShardedRound, local_shards, run_sharded_round

    shards = int(params["shards"])
    min_size = int(params["min_shard_size"])
    capacities = _capacities(params, shards, min_size)
    serve_args = _serve_args(params)
    address = params["address"]
    output = Path(params["output"])
    spec = ShardedRound(
        capacities=capacities,
        serve_args=serve_args,
        min_shard_size=min_size,
        bits=_bits(params),
        host=address.with_port(0).target,
        output=output,
    )
    credentials = None
    if not params.get("insecure"):
        from secagg.transport.tls import server_credentials

        credentials = server_credentials(params["tls_cert"], params["tls_key"])
    start = local_shards
    if params.get("ray_address") is not None:
        from secagg.sharding.ray_hosts import ray_shards

        start = functools.partial(ray_shards, address=params["ray_address"])

    def log(line: str) -> None:
        err_console.print(plain(f"secagg serve: {line}"))

    result = asyncio.run(
        run_sharded_round(spec, address.target, credentials=credentials, start=start, log=log)
    )
    if result.total is None:
        raise click.ClickException(
            f"no shard released a sum (min shard size {min_size}); see {output}/report.json"
        )
    log(
        f"total over {len(result.released)} of {shards} shards, {len(result.included)} "
        f"clients: {output}/sum.npy"
    )


def _capacities(params: dict[str, Any], shards: int, min_size: int) -> list[int]:
    """Refuse what --shards cannot run; each shard's number of client slots."""
    from secagg.sharding.assign import balanced_capacities
    for name, what in _REFUSED:
        if params.get(name) is not None:
            raise click.UsageError(f"--shards does not take {what}")
    if params.get("rounds", 1) != 1:
        raise click.UsageError("--shards runs one round: drop --rounds")
    if params.get("dim") is None and params.get("spec_path") is None:
        raise click.UsageError("Missing option '--dim' (or '--spec', which fixes it)")
    try:
        capacities = balanced_capacities(int(params["clients"]), shards)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if min(capacities) < min_size:
        raise click.UsageError(
            f"{params['clients']} clients in {shards} shards gives shards of "
            f"{min(capacities)}; every shard must be able to reach --min-shard-size {min_size}"
        )
    return capacities


def _serve_args(params: dict[str, Any]) -> list[str]:
    """The `secagg serve` options every shard process gets from the sharded command line."""
    serve_args: list[str] = []
    for name, flag in _PASSED:
        if name == "bits" and params.get("spec_path") is not None:
            continue  # the spec fixes b (serve refuses a --bits that contradicts it)
        if params.get(name) is not None:
            serve_args += [flag, str(params[name])]
    return serve_args + [flag for name, flag in _FLAGS if params.get(name)]


def _bits(params: dict[str, Any]) -> int:
    """The round's b: --bits, or the one the --spec fixes."""
    spec_path = params.get("spec_path")
    if spec_path is None:
        return int(params["bits"])
    import json

    bits = json.loads(Path(spec_path).read_bytes()).get("bits", params["bits"])
    return int(bits)


def coordinator_option(func: F) -> F:
    """``secagg client --coordinator``: join the shard a sharded round's coordinator names."""
    return click.option(
        "--coordinator",
        default=None,
        help="A sharded round's coordinator HOST:PORT (instead of --server): it names the "
        "shard server to join.",
    )(func)


def shard_server(
    server: str | None,
    coordinator: str | None,
    name: str | None,
    insecure: bool,
    roots: bytes | None,
    timeout: float,
    wait: float,
) -> tuple[str, str | None]:
    """The server a client joins and its name: --server, or the shard --coordinator names.

    The name is fixed before asking (default host-pid, as the client's), since the
    coordinator gives each name one shard.
    """
    if (server is None) == (coordinator is None):
        raise click.UsageError("give --server or --coordinator (a sharded round), not both")
    if coordinator is None:
        assert server is not None
        return server, name
    import os
    import socket

    from secagg.errors import TransportError
    from secagg.sharding.coordinator import find_shard_sync
    from secagg.transport.client import channel_credentials

    name = name or f"{socket.gethostname()}-{os.getpid()}"
    credentials = None if insecure else channel_credentials(roots)
    try:
        shard, address = find_shard_sync(
            coordinator, name, credentials=credentials, timeout=timeout, wait=wait
        )
    except TransportError as exc:
        raise click.ClickException(str(exc)) from None
    err_console.print(plain(f"secagg client: {name!r} joins shard {shard} at {address}"))
    return address, name
