"""Smoke-run the protocol benchmarks' entry points on tiny configurations (no Flower, no
timing asserts): each child runs a real round and the total matches the plain sum."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

bench_protocol = pytest.importorskip("benchmarks.bench_protocol")
bench_scaling = pytest.importorskip("benchmarks.bench_scaling")


@pytest.mark.parametrize("dropout_round", ["masked-input", "unmasking"])
def test_run_secagg_in_process(dropout_round: str) -> None:
    row = bench_protocol.run_secagg(10, 200, 9, 6, 0.1, dropout_round, seed=1)
    assert row["ok"]
    assert row["server_masks"] >= 9
    assert row["client_s"] > 0
    # Timed by the round's observer (no patching of the server's modules).
    assert 0 < row["server_reconstruct_s"] < row["server_s"]
    assert 0 < row["server_remove_masks_s"] < row["server_s"]


def test_run_secagg_memory_trace() -> None:
    row = bench_protocol.run_secagg(8, 100, 7, 5, 0.0, memory=True, plain=False)
    assert row["server_held_bytes"] is not None
    assert row["server_held_bytes"] >= 100 * 4


def test_issue3_quick_table_via_children(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_protocol.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| n | D |" in out
    assert "| NO |" not in out


def test_limits_and_workers_quick() -> None:
    row = bench_scaling.run_limits(10, 1000, 4, 3, 0.1, "masked-input")
    assert row["ok"]
    assert row["client_limit_s"] > 0
    assert row["server_limit_s"] > 0
    res = bench_scaling.workers_bench(True, 2)
    assert res["server_speedup"] > 0
