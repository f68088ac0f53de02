"""Smoke-run each benchmark's main with --quick in-process: it runs and prints its table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_smoke_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "bench_prg",
            [
                "PRG throughput",
                "measurement",
                "Mwords/s",
                "GB/s",
                "ratio",
                "raw update_into",
                "MaskPRG.fill",
                "MaskPRG.add_into",
                "MaskPRG.add_many",
                "numpy in-place add",
            ],
        ),
        (
            "bench_shamir",
            ["Shamir", "share ms", "rec(t) ms", "rec(m) ms", "share+rec(m)", "1 bad, named ms"],
        ),
    ],
)
def test_quick_run_prints_the_table(
    name: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _load(name).main(["--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out
    assert len(out.strip().splitlines()) >= 4


def test_runnable_as_a_script_from_the_repository_root() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_shamir.py", "--quick", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "share ms" in result.stdout


def test_analytics_benchmark_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load("bench_analytics").main(["--quick", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("secure+DP MAE", "local DP MAE: OUE", "real protocol check", "per client"):
        assert text in out


def test_abort_rate_benchmark_counts_aborts(capsys: pytest.CaptureFixture[str]) -> None:
    # Every client drops (rate 0.99): rounds of 4 abort, and the table says so.
    assert _load("bench_default_abort_rate").main(["--sizes", "4:2", "--rate", "0.99"]) == 0
    out = capsys.readouterr().out
    row = out.strip().splitlines()[-1].split()
    assert row[:5] == ["4", "3", "3", "2", "2"]  # n, k, t, seeds, aborts
    assert row[5] == "100.00%"
