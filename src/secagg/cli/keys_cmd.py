"""``secagg keys``: long-term client identities and the registry clients load (malicious mode).

Private keys are written with mode 0600 and never printed; only public keys appear on screen.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from secagg.cli.console import console
from secagg.errors import ConfigError
from secagg.identity.registry import (
    IdentityRegistryFile,
    RegistryEntry,
    generate_identity,
    load_public_key,
    load_registry,
    save_identity,
    save_registry,
)

__all__ = ["keys_group"]


@click.group("keys")
def keys_group() -> None:
    """Client identity keys (Ed25519) and the identity registry for malicious-server mode."""


@keys_group.command("generate")
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Identity file to write (mode 0600); the public half goes to OUT.pub.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing identity.")
def generate_command(out: Path, force: bool) -> None:
    """Make a new client identity key pair."""
    key = generate_identity()
    pub = save_identity(key, out, overwrite=force)
    console.print(f"identity written to {out} (mode 0600; keep it secret)")
    console.print(f"public key written to {pub}")
    console.print(f"public key: {key.public_bytes.hex()}")


@keys_group.group("registry")
def registry_group() -> None:
    """Build and inspect the registry of client identity public keys."""


@registry_group.command("add")
@click.option(
    "--registry",
    "-r",
    "registry_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Registry file (created if missing).",
)
@click.option(
    "--identity",
    "-i",
    "identity",
    required=True,
    help="A .pub file, an identity file (only its public key is read), or a hex/base64 key.",
)
@click.option(
    "--index", type=click.IntRange(1, 2**32 - 1), default=None, help="The client's index."
)
@click.option("--name", default=None, help="The client's name.")
def registry_add_command(
    registry_path: Path, identity: str, index: int | None, name: str | None
) -> None:
    """Register one client's identity public key under an index and/or a name."""
    if index is None and name is None:
        raise ConfigError("give --index, --name or both")
    registry = load_registry(registry_path) if registry_path.exists() else IdentityRegistryFile()
    entry = RegistryEntry(load_public_key(identity), index, name)
    registry.add(entry)
    save_registry(registry, registry_path)
    console.print(
        f"registered {entry.label()} in {registry_path} ({len(registry)} clients); "
        f"public key {entry.public_key.hex()}"
    )


@registry_group.command("show")
@click.option(
    "--registry",
    "-r",
    "registry_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Registry file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the validated registry as JSON.")
def registry_show_command(registry_path: Path, as_json: bool) -> None:
    """Validate a registry and list its clients."""
    registry = load_registry(registry_path)
    if as_json:
        click.echo(json.dumps(registry.to_json(), indent=2))
        return
    console.print(f"{len(registry)} clients in {registry_path}", soft_wrap=True)
    table = Table()
    table.add_column("index", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("ed25519 public key", overflow="fold", min_width=16)
    for entry in registry:
        table.add_row(
            "" if entry.index is None else str(entry.index),
            entry.name or "",
            entry.public_key.hex(),
        )
    console.print(table)


@keys_group.command("show")
@click.argument("identity")
def show_command(identity: str) -> None:
    """Print the public key of an identity or .pub file (never the private key)."""
    console.print(load_public_key(identity).hex())
