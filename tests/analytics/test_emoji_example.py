"""Runs examples/emoji_counts.py small: numbers, an honest batching note, and the chart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "emoji_counts.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("emoji_counts_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_emoji_example_prints_numbers_and_writes_a_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install 'secagg[plot]'")
    out = tmp_path / "emoji.png"
    args = ["--devices", "400", "--clients", "8", "--epsilon", "2", "--out", str(out)]
    assert _load().main(args) == 0
    text = capsys.readouterr().out
    assert "400 simulated devices" in text
    assert "8 real secure-aggregation clients of up to 50 devices" in text
    assert "mean absolute error per emoji: secure+DP" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_emoji_example_says_when_matplotlib_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    out = tmp_path / "emoji.png"
    assert _load().main(["--devices", "100", "--clients", "4", "--out", str(out)]) == 0
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not out.exists()
