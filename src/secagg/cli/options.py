"""Options shared by the commands that configure a round (simulate, serve)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from secagg.errors import ConfigError
from secagg.graph import MODES, Mode, check_parameters

__all__ = ["check_round_options", "cli_wording", "round_options"]

# Library messages name keyword arguments; on the command line the user met the flags.
_FLAG_NAMES = {"allow_unsafe=True": "--allow-unsafe"}


def cli_wording(message: str) -> str:
    """``message`` with Python keyword arguments replaced by the CLI flags that set them."""
    for python, flag in _FLAG_NAMES.items():
        message = message.replace(python, flag)
    return message


def check_round_options(
    n: int, degree: int | None, threshold: int | None, mode: Mode, allow_unsafe: bool
) -> None:
    """Refuse an impossible or unsafe explicit --degree/--threshold before anything starts."""
    if degree is None or threshold is None:
        return  # the finder completes the pair later, with its own checks
    try:
        check_parameters(n, degree, threshold, mode, allow_unsafe=allow_unsafe)
    except ConfigError as exc:
        raise click.UsageError(cli_wording(str(exc))) from None


F = TypeVar("F", bound=Callable[..., Any])


def round_options(mode_help: str) -> Callable[[F], F]:
    """--bits, --degree, --threshold, --mode and --allow-unsafe, as one decorator."""
    decorators = [
        click.option(
            "--bits",
            "-b",
            type=click.IntRange(1, 64),
            default=32,
            show_default=True,
            help="Ring bit width: values are integers mod 2^bits.",
        ),
        click.option(
            "--degree",
            "-k",
            type=click.IntRange(1),
            default=None,
            help="Neighbours per client (default: the parameter finder's choice).",
        ),
        click.option(
            "--threshold",
            "-t",
            type=click.IntRange(1),
            default=None,
            help="Shamir threshold (default: derived from the degree and mode).",
        ),
        click.option(
            "--mode",
            type=click.Choice(list(MODES)),
            default="semi-honest",
            show_default=True,
            help=mode_help,
        ),
        click.option(
            "--allow-unsafe", is_flag=True, help="Accept a threshold below the mode's rule."
        ),
    ]

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply
