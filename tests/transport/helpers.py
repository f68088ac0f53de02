"""Helpers for tests with real processes on loopback: `secagg serve`, `secagg client`, adversaries.

Every process started through the ``procs`` fixture is SIGKILLed at teardown if still alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
PY = sys.executable
SECAGG = [PY, "-m", "secagg.cli.main"]
WAIT = 60.0  # generous bound on any single wait; tests never assert on speed


# Ports for test servers come from below the kernel's ephemeral range (32768-60999 on Linux),
# picked at random: no client socket anywhere on the machine is ever given one of them, and
# parallel test workers (pytest -n) and other test runs rarely pick the same one; a taken one is
# skipped by the bind check, and wait_listening checks that it is our server that listens.
_PORTS = (20000, 32000)


def free_port() -> int:
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {_PORTS}")


def wait_listening(
    port: int, proc: subprocess.Popen[bytes], timeout: float = WAIT, log: Path | None = None
) -> None:
    """Wait until ``proc`` listens on ``port``: with ``log``, until it says so there too (so a
    port another process took in the meantime is never mistaken for ours)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        said = log is None or f":{port} " in log.read_text(errors="replace")
        if said:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on port {port}")


def wait_for_text(
    path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = WAIT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before printing {text!r}")
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {path}")


@dataclass
class Procs:
    tmp: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(
        self, args: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})},
            )
        self.started.append(proc)
        return proc

    def serve(
        self, port: int, *options: str, name: str = "server", env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        proc = self.spawn(
            [
                *SECAGG,
                "serve",
                "--address",
                f"127.0.0.1:{port}",
                "--output",
                str(self.tmp / f"{name}-out"),
                *options,
            ],
            self.tmp / f"{name}.log",
            env,
        )
        wait_listening(port, proc, log=self.tmp / f"{name}.log")
        return proc

    def client(
        self, port: int, name: str, vector: np.ndarray, *options: str
    ) -> subprocess.Popen[bytes]:
        path = self.tmp / f"{name}.npy"
        np.save(path, vector)
        return self.spawn(
            [
                *SECAGG,
                "client",
                "--server",
                f"127.0.0.1:{port}",
                "--input",
                str(path),
                "--name",
                name,
                "--timeout",
                "60",
                *options,
            ],
            self.tmp / f"{name}.log",
        )

    def adversary(
        self, port: int, mode: str, *args: str, name: str | None = None
    ) -> subprocess.Popen[bytes]:
        return self.spawn(
            [PY, str(HERE / "adversary.py"), mode, f"127.0.0.1:{port}", *args],
            self.tmp / f"{name or mode}.log",
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def report(self, name: str = "server") -> dict[str, Any]:
        return json.loads((self.tmp / f"{name}-out" / "report.json").read_text())

    def total(self, name: str = "server") -> np.ndarray:
        return np.load(self.tmp / f"{name}-out" / "sum.npy")

    def kill_when(self, proc: subprocess.Popen[bytes], name: str, text: str) -> None:
        wait_for_text(self.tmp / f"{name}.log", text, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT)


def cleanup(p: Procs) -> None:
    """SIGKILL every process still running and reap them all."""
    for proc in p.started:
        if proc.poll() is None:
            proc.kill()
    for proc in p.started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def wait_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float = WAIT) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
    return codes


def plain_sum(vectors: dict[str, np.ndarray], names: Sequence[str], bits: int) -> np.ndarray:
    total = np.zeros(next(iter(vectors.values())).shape[0], dtype=object)
    for name in names:
        total = total + vectors[name].astype(object)
    return (total % (1 << bits)).astype(np.uint64)


def random_vectors(
    names: Sequence[str], dim: int, bits: int, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = np.uint32 if bits <= 32 else np.uint64
    return {n: rng.integers(0, 1 << bits, size=dim, dtype=np.uint64).astype(dtype) for n in names}
