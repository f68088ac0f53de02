"""examples/network_fedavg.py run for real: a server and client processes, one SIGKILLed mid-round.

At every round the server's decoded weighted mean must equal the plain weighted average of the
included clients' (clipped) updates, which the clients dumped for the test, within the
encoder's documented bound (DecodedResult.weighted_mean_error_bound); the test loss falls.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (optional extra 'torch')")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "network_fedavg.py"
CLIENTS = 6
ROUNDS = 3


@pytest.mark.slow
def test_network_fedavg_matches_the_plain_weighted_average(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    proc = subprocess.run(
        [
            sys.executable, str(EXAMPLE), "--clients", str(CLIENTS), "--rounds", str(ROUNDS),
            "--kill", "1", "--kill-round", "2", "--dump-dir", str(dump),
        ],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    losses = json.loads(proc.stdout.strip().splitlines()[-1])["losses"]
    assert len(losses) == ROUNDS + 1
    assert losses[-1] < losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses))
    killed_seen = False
    for r in range(1, ROUNDS + 1):
        record = json.loads((dump / f"round-{r}.json").read_text())
        assert record["status"] == "complete"
        included = record["included"]
        if record["dropped"]:
            killed_seen = True
            assert record["dropped"] == {"client-00": "transport-error"}
        assert len(included) >= CLIENTS - 1
        mean = np.load(dump / f"round-{r}-mean.npz")
        updates = [np.load(dump / f"round-{r}-{name}.npz") for name in included]
        total_weight = sum(float(u["weight"]) for u in updates)
        bound = record["bound"]
        assert 0 < bound < 1e-3
        for key in mean.files:
            plain = sum(float(u["weight"]) * u[f"u/{key}"].astype(np.float64) for u in updates)
            plain = plain / total_weight
            assert np.max(np.abs(mean[key] - plain)) <= bound, (r, key)
    assert killed_seen
