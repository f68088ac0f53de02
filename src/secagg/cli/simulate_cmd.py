"""``secagg simulate``: a whole round in one process, with a check against the plain sum."""

from __future__ import annotations

import json
from typing import Any

import click
import numpy as np
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from secagg.cli.console import console
from secagg.cli.options import check_round_options, cli_wording, round_options
from secagg.errors import ConfigError
from secagg.graph import GraphParameters
from secagg.simulation.engine import SimulationResult, simulate

__all__ = ["simulate_command"]

_ROUNDS = ["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmasking"]


@click.command("simulate")
@click.option(
    "--clients",
    "-n",
    type=click.IntRange(2),
    default=50,
    show_default=True,
    help="Number of clients.",
)
@click.option(
    "--dim",
    "-d",
    type=click.IntRange(1),
    default=100_000,
    show_default=True,
    help="Vector length D.",
)
@round_options("Threat model for the server.")
@click.option(
    "--drop-fraction",
    "drop_fraction",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Fraction of clients this simulation really drops (chosen at random).",
)
@click.option(
    "--dropout",
    "old_dropout",
    type=click.FloatRange(0, 1),
    default=None,
    hidden=True,
    help="Deprecated name of --drop-fraction.",
)
@click.option(
    "--design-dropout-rate",
    type=click.FloatRange(0, 0.5),
    default=None,
    help="Dropout rate the parameter finder designs k and t for (drops no one; default: "
    "the drop fraction, at least 1%).",
)
@click.option(
    "--dropout-round",
    type=click.Choice([*_ROUNDS, "random"]),
    default="random",
    show_default=True,
    help="The round at which dropping clients stop.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Make inputs, keys and dropouts reproducible (testing only).",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Processes for the server's mask removal (the GIL is held in AES: threads don't help).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def simulate_command(
    clients: int,
    dim: int,
    bits: int,
    degree: int | None,
    threshold: int | None,
    drop_fraction: float,
    old_dropout: float | None,
    design_dropout_rate: float | None,
    dropout_round: str,
    mode: str,
    seed: int | None,
    allow_unsafe: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Run a secure-aggregation round in-process over random vectors and check the sum."""
    if old_dropout is not None:
        click.echo("secagg simulate: --dropout is now --drop-fraction", err=True)
        drop_fraction = old_dropout
    check_round_options(clients, degree, threshold, mode, allow_unsafe)  # type: ignore[arg-type]
    gen = np.random.default_rng(seed)  # test data only; masks never come from here
    high = 1 << bits
    inputs = (
        gen.integers(0, high, size=(clients, dim), dtype=np.uint64)
        if bits < 64
        else gen.integers(0, 2**63, size=(clients, dim), dtype=np.uint64) * 2
        + gen.integers(0, 2, size=(clients, dim), dtype=np.uint64)
    )
    kwargs: dict[str, Any] = {
        "bits": bits,
        "degree": degree,
        "threshold": threshold,
        "dropout": drop_fraction,
        "design_dropout_rate": design_dropout_rate,
        "dropout_round": None if dropout_round == "random" else dropout_round,
        "mode": mode,
        "seed": seed,
        "allow_unsafe": allow_unsafe,
        "workers": workers,
    }
    try:
        result = _run(inputs, kwargs, progress=not as_json)
    except ConfigError as exc:
        raise click.ClickException(cli_wording(str(exc))) from None
    matches = bool(np.array_equal(result.total, result.plain_total(inputs)))
    summary = _summary(result, matches)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        _print(summary)
    if not matches:
        raise click.ClickException("the secure total does NOT match the plain sum")


def _run(inputs: Any, kwargs: dict[str, Any], *, progress: bool) -> SimulationResult:
    if not progress:
        return simulate(inputs, **kwargs)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("round", total=len(_ROUNDS) if kwargs["mode"] == "malicious" else 4)

        def step(name: str, count: int) -> None:
            bar.update(
                task,
                advance=0 if name == "advertise-keys" else 1,
                description=f"{name} ({count} clients)",
            )

        return simulate(inputs, progress=step, **kwargs)


def _summary(result: SimulationResult, matches: bool) -> dict[str, Any]:
    cfg = result.config
    sent = result.client_bytes_sent
    active = [s for s in sent if s]
    return {
        "clients": cfg.num_clients,
        "dim": cfg.dim,
        "bits": cfg.bits,
        "degree": cfg.degree,
        "threshold": cfg.threshold,
        "mode": cfg.mode,
        "parameters": _parameters(cfg.parameters),
        "included": list(result.included),  # 0-based, as SimulationResult.included
        "num_included": len(result.included),
        "dropped": {
            str(k): {"round": d.round.label, "reason": d.reason.value}
            for k, d in result.dropped.items()
        },
        "matches_plain_sum": matches,
        "timings": {
            name: {
                "client_mean_s": t.client_mean,
                "client_max_s": t.client_max,
                "clients_total_s": t.clients_total,
                "server_s": t.server,
            }
            for name, t in result.timings.items()
        },
        "bytes": {
            "client_sent_mean": (sum(active) / len(active)) if active else 0,
            "client_sent_max": max(sent, default=0),
            "server_sent": result.server_bytes_sent,
            "server_received": result.server_bytes_received,
            "raw_input_per_client": cfg.dim * (4 if cfg.bits <= 32 else 8),
        },
    }


def _parameters(found: GraphParameters | None) -> dict[str, Any] | None:
    """The failure bounds of the round's (n, k, t), for the report (JSON has no -inf)."""
    if found is None:
        return None
    return {
        "privacy_failure_log2": _finite(found.privacy_failure_log2),
        "abort_probability": found.abort_probability,
        "meets_correctness_target": found.meets_correctness,
        "summary": found.describe(),
    }


def _finite(log2: float) -> float | None:
    return None if log2 == float("-inf") else log2


def _print(summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]secagg simulate[/]: n={summary['clients']} D={summary['dim']} b={summary['bits']} "
        f"k={summary['degree']} t={summary['threshold']} mode={summary['mode']}"
    )
    if summary["parameters"] is not None:
        console.print(f"parameters: {escape(summary['parameters']['summary'])}")
    table = Table(title="time per round (seconds)")
    for col in ("round", "client mean", "client max", "server"):
        table.add_column(col, justify="right" if col != "round" else "left")
    for name, t in summary["timings"].items():
        table.add_row(
            name, f"{t['client_mean_s']:.4f}", f"{t['client_max_s']:.4f}", f"{t['server_s']:.4f}"
        )
    console.print(table)
    b = summary["bytes"]
    console.print(
        f"bytes: per client sent {b['client_sent_mean']:,.0f} (max {b['client_sent_max']:,}), "
        f"server sent {b['server_sent']:,}, server received {b['server_received']:,}"
    )
    dropped = summary["dropped"]
    console.print(
        f"included {summary['num_included']} of {summary['clients']} clients; "
        f"dropped {len(dropped)}"
    )
    for client, info in sorted(dropped.items(), key=lambda kv: int(kv[0])):
        console.print(f"  client {client}: dropped in {info['round']} ({info['reason']})")
    verdict = "[bold green]MATCHES[/]" if summary["matches_plain_sum"] else "[bold red]DIFFERS[/]"
    console.print(f"secure total vs plain sum of the included inputs: {verdict}")
