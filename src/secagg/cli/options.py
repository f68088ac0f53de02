"""Options shared by the commands that configure a round (simulate, serve)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from secagg.graph import MODES

__all__ = ["round_options"]

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
