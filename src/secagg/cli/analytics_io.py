"""Analytics over the network: the shared --query options, the values file, the outputs.

``secagg serve --query q.json`` announces an analytics round (the query's spec digest is bound
into the round config) and writes the released answer; ``secagg client --query q.json
--values FILE`` contributes to it and refuses a round about anything else.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from secagg.analytics import (
    DEFAULT_MIN_CLIENTS,
    AnalyticsResult,
    AnalyticsRound,
    DistributedDP,
    GroupBy,
    Histogram,
    Mean,
    Quantiles,
    Sum,
)
from secagg.analytics.privacy import DEFAULT_DELTA
from secagg.cli.console import console
from secagg.errors import ConfigError

__all__ = ["analytics_options", "load_spec", "read_values", "show_result", "write_result"]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_VALUES_BYTES = 64 * 1024 * 1024


def analytics_options(func: F) -> F:
    """--query, --epsilon, --delta and --min-contributors (the same on server and clients)."""
    decorators = [
        click.option(
            "--query",
            "query_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Analytics: a query (or analytics-round) JSON file; the round answers it.",
        ),
        click.option(
            "--epsilon",
            type=click.FloatRange(0, min_open=True),
            default=None,
            help="Analytics: distributed DP with this epsilon (same value on every side).",
        ),
        click.option(
            "--delta",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=DEFAULT_DELTA,
            show_default=True,
            help="Analytics: DP delta (with --epsilon).",
        ),
        click.option(
            "--min-contributors",
            type=click.IntRange(1),
            default=None,
            help=f"Analytics: release only with this many contributors [default: "
            f"{DEFAULT_MIN_CLIENTS}].",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def load_spec(
    path: Path | None, epsilon: float | None, delta: float, min_contributors: int | None
) -> AnalyticsRound | None:
    """The round spec from the --query file and options (None without --query).

    A bare query file gets its rules from the options; an analytics-round file carries its own,
    and then the options must not be given.
    """
    if path is None:
        if epsilon is not None or min_contributors is not None:
            raise click.UsageError("--epsilon/--min-contributors go with --query")
        return None
    spec = AnalyticsRound.from_json(path.read_bytes())
    if json.loads(path.read_bytes()).get("kind") == "query":
        return AnalyticsRound(
            spec.query,
            min_clients=DEFAULT_MIN_CLIENTS if min_contributors is None else min_contributors,
            dp=None if epsilon is None else DistributedDP(epsilon=epsilon, delta=delta),
        )
    if epsilon is not None or min_contributors is not None:
        raise click.UsageError(
            f"{path} sets its own release rules; drop --epsilon/--min-contributors"
        )
    return spec


def read_values(path: Path, spec: AnalyticsRound) -> list[Any]:
    """A client's raw values: a JSON list, or one value per line (numbers for numeric
    queries; comma- or tab-separated fields for a group-by)."""
    if path.stat().st_size > _MAX_VALUES_BYTES:
        raise ConfigError(f"{path} is larger than {_MAX_VALUES_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path} is not a valid JSON list: {exc}") from None
        if not isinstance(values, list):
            raise ConfigError(f"{path} must hold a JSON list")
        return values
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    query = spec.query
    if isinstance(query, Sum | Mean | Quantiles):
        try:
            return [float(line) for line in lines]
        except ValueError:
            raise ConfigError(
                f"{path}: every line must be a number for a {query.type_name}"
            ) from None
    if isinstance(query, GroupBy):
        sep = "\t" if any("\t" in line for line in lines) else ","
        return [tuple(field.strip() for field in line.split(sep)) for line in lines]
    if isinstance(query, Histogram):
        # A line names a domain item; "7" is the integer item 7 when the domain has no "7".
        domain = set(query.domain)
        return [line if line in domain or not _is_int(line) else int(line) for line in lines]
    return lines


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _label(label: Any) -> str:
    return " / ".join(map(str, label)) if isinstance(label, tuple) else str(label)


def write_result(output: Path, result: AnalyticsResult) -> None:
    """OUTPUT/analytics.json always; OUTPUT/analytics.csv when something was released."""
    (output / "analytics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.released:
        return
    with (output / "analytics.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "count", "stddev", "interval_low", "interval_high"])
        for label, value in result.counts.items():
            low, high = result.intervals.get(label, ("", ""))
            writer.writerow([_label(label), value, result.stddev.get(label, ""), low, high])


def show_result(result: AnalyticsResult) -> None:
    """A printed table of the answer with its intervals, or why nothing was released."""
    if not result.released:
        console.print(f"[bold red]nothing released[/] ({result.reason}): {result.detail}")
        return
    title = f"{result.query.type_name}: {len(result.included)} contributors"
    if result.epsilon is not None:
        title += f", epsilon={result.epsilon:g}, delta={result.delta:g}"
    table = Table(title=title)
    table.add_column("label")
    table.add_column("count", justify="right")
    if result.intervals:
        table.add_column(f"{result.confidence:.0%} interval", justify="right")
    for label, value in result.counts.items():
        row = [_label(label), f"{value:.6g}"]
        if result.intervals:
            low, high = result.intervals[label]
            row.append(f"[{low:.6g}, {high:.6g}]")
        table.add_row(*row)
    console.print(table)
    for key, value in result.answer.items():
        console.print(f"{key} = {value:.6g}")
