"""benchmarks/bench_cluster.py runs (a tiny in-process simulate) and its sum is exact."""

from __future__ import annotations

import json

import pytest
from benchmarks import bench_cluster


def test_simulate_bench_prints_one_exact_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cluster.main(["simulate", "--n", "12", "--dim", "4", "--engine", "local"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["exact"] is True
    assert line["n"] == 12
    assert line["included"] == 11  # 5% of 12 rounds to one client dropped
