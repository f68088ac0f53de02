"""Issue 11.14: `make demo` tells one round in order, with small numbers and the final check.

Runs the real demo (a server and client processes on loopback, two of them SIGKILLed).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lists(line: str) -> list[int]:
    return list(ast.literal_eval(line[line.index("[") :]))


# What `make test` installs and `make demo` must not need: the demo runs with these poisoned.
_TEST_ONLY = ("torch", "pytest", "hypothesis", "mypy", "ruff", "grpc_tools")


def test_demo_tells_the_round_in_order(tmp_path: Path) -> None:
    for name in _TEST_ONLY:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('the demo must not import {name}')\n"
        )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "secagg.cli.demo", "--clients", "16"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},  # inherited by the server and client processes
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    story = [
        "1. The clients.",
        "client-01 holds [",
        "2. The server starts",
        "3. The round, as it happens:",
        "listening on 127.0.0.1:",
        "k = ",  # k, t, D and b explained once the server chose them ...
        "t = ",
        "Shamir shares",
        "advertise-keys done",  # ... before the round runs, and the kills where they happen
        "SIGKILLed client-06 during share-keys",
        "share-keys done",
        "SIGKILLed client-11 during masked-input",
        "masked-input done",
        "complete; 14 included, 2 dropped",
        "4. What the server learned",
        "5. Bytes sent.",
        "6. The check",
        "secure sum vs plain sum of the 14 included inputs: MATCHES",
    ]
    positions = [out.find(marker) for marker in story]
    missing = [m for m, p in zip(story, positions, strict=True) if p < 0]
    assert not missing, f"missing {missing} in:\n{out}"
    assert positions == sorted(positions), f"out of order:\n{out}"
    assert out.rstrip().endswith("MATCHES")
    # Small readable numbers: each input below 10, and the check compares equal lists.
    holdings = [_lists(line) for line in out.splitlines() if " holds [" in line]
    assert len(holdings) == 16
    assert all(0 <= x < 10 for vector in holdings for x in vector)
    plain = next(line for line in out.splitlines() if "plain sum of the 14 included" in line)
    secure = next(line for line in out.splitlines() if "secure sum from the server" in line)
    assert _lists(plain) == _lists(secure)
    assert all(x < 140 for x in _lists(secure))
    # The bytes each party sent, as the README promises.
    assert re.search(r"each included client sent [\d,]+(-[\d,]+)? bytes", out)
    assert re.search(r"the server sent [\d,]+ bytes and received [\d,]+ bytes", out)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_only_what_the_demo_uses(tmp_path: Path) -> None:
    venv = f"VENV={tmp_path / 'venv'}"
    demo = subprocess.run(
        ["make", "-n", "demo", venv], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "pip install --quiet -e ." in demo
    assert "[test" not in demo
    assert "torch" not in demo
    test = subprocess.run(
        ["make", "-n", "test", venv], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "-e '.[test,torch" in test
