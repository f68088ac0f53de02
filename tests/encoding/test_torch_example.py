"""Runs examples/torch_fedavg.py (needs the optional torch extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_fedavg.py"


def test_torch_fedavg_example_matches_plain_average(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch", reason="torch not installed: pip install 'secagg[torch]' (CPU)")
    spec = importlib.util.spec_from_file_location("torch_fedavg_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--clients", "5", "--rounds", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count(": True;") == 2
    assert "clipped coordinates 0" in out
