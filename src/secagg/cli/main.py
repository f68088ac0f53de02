"""The ``secagg`` command: one group, one error boundary."""

from __future__ import annotations

import sys

import click

from secagg.cli.client_cmd import client_command
from secagg.cli.console import err_console, plain
from secagg.cli.keys_cmd import keys_group
from secagg.cli.serve_cmd import serve_command
from secagg.cli.simulate_cmd import simulate_command
from secagg.errors import SecAggError, UnsafeParametersError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="secagg")
def cli() -> None:
    """Secure aggregation: the server learns the sum of the clients' vectors, nothing else."""


cli.add_command(simulate_command)
cli.add_command(serve_command)
cli.add_command(client_command)
cli.add_command(keys_group)


def main() -> None:
    """Entry point: run the CLI, turning secagg errors into one clean line and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UnsafeParametersError as exc:  # name the CLI flag, not the Python keyword
        err_console.print("[bold red]error:[/]", plain(f"{exc.problem} (pass --allow-unsafe)"))
        sys.exit(1)
    except SecAggError as exc:
        err_console.print("[bold red]error:[/]", plain(str(exc)))  # may quote peer text
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
