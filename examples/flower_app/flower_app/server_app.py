"""The ServerApp: FedAvg with centralised evaluation; SecAggGrid is line 2 of the two."""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, Result

from flower_app.task import accuracy, init_model, load_test, loss
from secagg.flower import SecAggGrid

app = ServerApp()


def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    x, y = load_test()
    model = {k: arrays[k].numpy() for k in arrays}
    return MetricRecord({"accuracy": accuracy(model, x, y), "loss": loss(model, x, y)})


def run(grid: Grid, *, rounds: int, secure: bool, clip: float = 1.0) -> Result:
    """Train for ``rounds`` rounds, securely aggregated when ``secure``."""
    if secure:
        grid = SecAggGrid(grid, clip=clip, metrics=["train_loss"])
    strategy = FedAvg(fraction_evaluate=0.0, min_available_nodes=2)
    return strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord({k: Array(v) for k, v in init_model().items()}),
        num_rounds=rounds,
        evaluate_fn=central_evaluate,
    )


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    result = run(
        grid,
        rounds=int(cfg.get("num-server-rounds", 5)),
        secure=bool(cfg.get("secagg", True)),
        clip=float(cfg.get("clip", 1.0)),
    )
    for rnd, metrics in sorted(result.evaluate_metrics_serverapp.items()):
        print(f"round {rnd}: accuracy {metrics['accuracy']:.4f}")
