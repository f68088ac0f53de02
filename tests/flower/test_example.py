"""The example Flower app (examples/flower_app) learns the same with and without secagg."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("flwr", reason="the flower extra is not installed")

from tests.flower.local_grid import LocalGrid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flower_app"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from flower_app import client_app, server_app

    yield client_app, server_app
    for name in [m for m in sys.modules if m == "flower_app" or m.startswith("flower_app.")]:
        del sys.modules[name]


def test_the_example_learns_the_same_curve_with_and_without_secagg(example: tuple) -> None:
    client_app, server_app = example
    nodes = {10 + p: {"partition-id": p, "num-partitions": 10} for p in range(10)}
    curves = {}
    for secure in (False, True):
        grid = LocalGrid(client_app.app, nodes)
        result = server_app.run(grid, rounds=3, secure=secure)
        curves[secure] = [result.evaluate_metrics_serverapp[r]["accuracy"] for r in range(4)]
    plain, secure = curves[False], curves[True]
    assert plain[3] > plain[0] + 0.2  # it learns
    assert secure == pytest.approx(plain, abs=0.01)  # and secagg changes nothing visible
