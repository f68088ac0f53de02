"""`secagg serve --shards N` with real shard processes, a coordinator and gRPC clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from secagg.protocol.messages import Round
from secagg.sharding.coordinator import find_shard
from secagg.transport.client import Client

PY = sys.executable


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _vector(i: int, dim: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 1 << 20, dim, dtype=np.uint64).astype(np.uint32)


def _serve(
    address: str, out: Path, clients: int, shards: int, min_size: int, dim: int, *extra: str
):
    command = [PY, "-m", "secagg.cli.main", "serve", "--address", address, "--clients",
               str(clients), "--shards", str(shards), "--min-shard-size", str(min_size), "--dim",
               str(dim), "--bits", "32", "--insecure", "--output", str(out), "--join-timeout",
               "120", *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, text: str, server: subprocess.Popen[str], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while text not in (path.read_text() if path.exists() else ""):
        assert server.poll() is None, "the sharded server ended early"
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_shard_loses_only_its_clients_and_small_shards_are_not_released(
    tmp_path: Path,
) -> None:
    """4 shards of 40 clients; shard A is SIGKILLed mid-round (in masked-input), one client of
    shard B stalls, leaving 39 < --min-shard-size 40: the total is exactly the sum over the two
    full shards, A is reported failed, B discarded and its sum deleted."""
    n, shards, dim = 160, 4, 8
    address, out = _free_address(), tmp_path / "out"
    server = _serve(address, out, n, shards, 40, dim, "--phase-timeout", "10")

    async def clients() -> tuple[dict[str, int], int, int]:
        names = [f"client-{i:03d}" for i in range(n)]
        found = await asyncio.gather(*(find_shard(address, m, wait=300) for m in names))
        shard_of = {m: s for m, (s, _a) in zip(names, found, strict=True)}
        killed, small = 0, 1
        stallers = {next(m for m in names if shard_of[m] == s) for s in (killed, small)}

        async def one(i: int, name: str, target: str) -> None:
            stall = Round.MASKED_INPUT if name in stallers else None
            client = Client(target, name=name, insecure=True, timeout=60, stall_at=stall)
            try:
                await client.submit(_vector(i, dim))
            except Exception:
                return

        async def kill_when_masking() -> None:
            log = out / f"shard-{killed}" / "serve.log"
            await asyncio.to_thread(_wait_for, log, "share-keys done", server)
            pid = json.loads((out / "shards.json").read_text())[killed]["pid"]
            os.kill(pid, signal.SIGKILL)

        await asyncio.gather(
            kill_when_masking(),
            *(one(i, m, a) for i, (m, (_s, a)) in enumerate(zip(names, found, strict=True))),
        )
        return shard_of, killed, small

    shard_of, killed, small = asyncio.run(clients())
    stdout, _ = server.communicate(timeout=120)
    assert server.returncode == 0, stdout
    report = json.loads((out / "report.json").read_text())
    status = {s["shard"]: s for s in report["shards"]}
    assert status[killed]["status"] == "failed"
    assert "SIGKILL" in status[killed]["detail"]
    assert status[small]["status"] == "discarded"
    assert status[small]["included"] == 39
    assert not list((out / f"shard-{small}" / "out").glob("sum*.npy"))  # never released
    full = sorted(set(range(shards)) - {killed, small})
    assert [status[s]["status"] for s in full] == ["released", "released"]
    assert report["released_shards"] == full
    members = sorted(m for m, s in shard_of.items() if s in full)
    assert report["included"] == members
    expected = np.zeros(dim, dtype=np.uint32)
    for name in members:
        expected += _vector(int(name.split("-")[1]), dim)
    np.testing.assert_array_equal(np.load(out / "sum.npy"), expected)


def test_cli_clients_follow_the_coordinator(tmp_path: Path) -> None:
    """`secagg client --coordinator` asks for its shard and joins it; the total is exact."""
    n, dim = 4, 5
    address, out = _free_address(), tmp_path / "out"
    server = _serve(address, out, n, 2, 2, dim)
    procs = []
    for i in range(n):
        path = tmp_path / f"x{i}.npy"
        np.save(path, _vector(i, dim))
        procs.append(
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "secagg.cli.main",
                    "client",
                    "--coordinator",
                    address,
                    "--input",
                    str(path),
                    "--insecure",
                    "--name",
                    f"c{i}",
                    "--wait",
                    "300",
                    "--dim",
                    str(dim),
                    "--allow-weak-parameters",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [p.communicate(timeout=180)[0] for p in procs]
    stdout, _ = server.communicate(timeout=60)
    assert server.returncode == 0, stdout + "\n".join(logs)
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    assert all("joins shard" in log for log in logs)
    report = json.loads((out / "report.json").read_text())
    assert [s["status"] for s in report["shards"]] == ["released", "released"]
    assert report["included"] == [f"c{i}" for i in range(n)]
    expected = sum(_vector(i, dim) for i in range(n)).astype(np.uint32)
    np.testing.assert_array_equal(np.load(out / "sum.npy"), expected)


def test_serve_refuses_shards_it_cannot_fill(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from secagg.cli.main import cli

    args = ["serve", "--clients", "10", "--shards", "4", "--dim", "3", "--insecure",
            "--output", str(tmp_path / "o")]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--min-shard-size", "3"])
    assert result.exit_code == 2
    assert "every shard must be able to reach --min-shard-size 3" in result.output
    result = CliRunner().invoke(cli, [*args, "--min-shard-size", "2", "--degree", "3"])
    assert result.exit_code == 2
    assert "--shards does not take --degree" in result.output


def test_sigterm_ends_every_shard_and_reports_them(tmp_path: Path) -> None:
    """Stopping the master stops its shard processes (none left behind) and still reports."""
    address, out = _free_address(), tmp_path / "out"
    server = _serve(address, out, 4, 2, 2, 3)
    deadline = time.monotonic() + 120
    while not (out / "shards.json").exists():
        assert server.poll() is None, server.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    pids = [s["pid"] for s in json.loads((out / "shards.json").read_text())]
    server.send_signal(signal.SIGTERM)
    stdout, _ = server.communicate(timeout=120)
    assert server.returncode == 1, stdout
    assert "no shard released a sum" in stdout
    report = json.loads((out / "report.json").read_text())
    assert [s["status"] for s in report["shards"]] == ["aborted", "aborted"]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
