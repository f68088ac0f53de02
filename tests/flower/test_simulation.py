"""Must-show (issue 12): a Flower app with ``secagg_mod`` and ``SecAggGrid`` in Flower's own
simulation engine, 10 supernodes of which 2 fail (one in training, one mid-protocol): the
strategy's model equals the plain weighted mean of the included nodes' models within the
encoder's documented bound."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the flower extra is not installed")
pytest.importorskip("ray", reason="Flower's simulation engine needs ray")

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

from secagg.flower import SecAggGrid
from secagg.reasons import DropReason
from tests.flower import apps
from tests.flower.conftest import LOOPBACK_BACKEND

# Ray leaves /dev/null handles to the garbage collector (ResourceWarning in its own code).
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

FAIL_AT = {3: 1, 7: 3}  # partition 3 crashes in training, partition 7 before its masked input


def test_ten_supernodes_two_failing_aggregate_is_the_weighted_mean_of_the_rest() -> None:
    outcome: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        secure = SecAggGrid(
            grid, clip=0.5, degree=9, threshold=6, metrics=["train_loss"], step_timeout=120
        )
        initial = apps.initial_arrays()
        result = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=10).start(
            grid=secure, initial_arrays=initial, num_rounds=1
        )
        outcome.update(result=result, reports=secure.reports, initial=initial)

    run_simulation(
        server_app=server,
        client_app=apps.make_client_app(fail_at=FAIL_AT),
        num_supernodes=10,
        backend_config=LOOPBACK_BACKEND,
    )

    (report,) = outcome["reports"]
    assert len(report.nodes) == 10
    assert len(report.included) == 8
    reasons = {d[1] for d in report.dropped.values()}
    assert reasons == {DropReason.NODE_ERROR}
    assert len(report.dropped) == 2
    # Which node ids the engine gave partitions 3 and 7 is its business; the aggregate must be
    # the weighted mean of exactly the 8 partitions other than those.
    expected = apps.expected_mean([p for p in range(10) if p not in FAIL_AT], outcome["initial"])
    arrays = outcome["result"].arrays
    bound = report.mean_error_bound
    assert bound is not None
    assert 0 < bound < 0.01
    for key, want in expected.items():
        got = arrays[key].numpy().astype(np.float64)
        # + float32 rounding of the returned model (values below 2 in magnitude)
        assert np.max(np.abs(got - want)) <= bound + 2.0**-22
    total = sum(apps.weight(p) for p in range(10) if p not in FAIL_AT)
    metrics = outcome["result"].train_metrics_clientapp[1]
    assert set(metrics) == {"train_loss"}  # the weight key is consumed by FedAvg
    included = [p for p in range(10) if p not in FAIL_AT]
    want_loss = sum(apps.weight(p) * apps.loss(p) for p in included) / total
    assert abs(metrics["train_loss"] - want_loss) <= 100.0 / 0.5 * bound
