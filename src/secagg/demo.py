"""``make demo``: a real round over loopback with 20 client processes, 2 of them SIGKILLed.

Starts ``secagg serve`` and 20 ``secagg client`` processes on 127.0.0.1 with random vectors,
kills one client during the share-keys round and one during the masked-input round (each is
held at its round with the clients' testing hook ``--stall-at`` and then SIGKILLed, so the
server sees a real disconnect at a known round), and prints the result, the included clients
and a check of the sum against the plain sum of the included inputs, computed here from the
inputs this script generated. Exits non-zero if anything differs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

CLIENTS = 20
DIM = 10_000
BITS = 32
VICTIMS = {"client-07": "share-keys", "client-15": "masked-input"}
TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(line: str) -> None:
    print(line, flush=True)


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited early ({server.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start listening")


def main() -> int:
    """Run the demo; returns the exit code."""
    secagg = [sys.executable, "-m", "secagg.cli.main"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="secagg-demo-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            return _run(tmp, secagg, env, procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()


def _run(
    tmp: Path, secagg: list[str], env: dict[str, str], procs: list[subprocess.Popen[bytes]]
) -> int:
    rng = np.random.default_rng()  # demo inputs only; the protocol's randomness is separate
    names = [f"client-{i:02d}" for i in range(1, CLIENTS + 1)]
    inputs = {n: rng.integers(0, 1 << BITS, DIM, dtype=np.uint64).astype(np.uint32) for n in names}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    out = tmp / "out"
    _say(f"secagg demo: 1 server + {CLIENTS} client processes on {address}, D={DIM}, b={BITS}")
    _say(f"  victims (SIGKILLed): {', '.join(f'{n} in {r}' for n, r in VICTIMS.items())}")
    started = time.perf_counter()
    server_log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*secagg, "serve", "--address", address, "--clients", str(CLIENTS), "--dim", str(DIM),
         "--bits", str(BITS), "--output", str(out), "--insecure", "--join-timeout", "60",
         "--phase-timeout", "30"],
        stdout=server_log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    procs.append(server)
    _wait_listening(port, server)
    clients: dict[str, subprocess.Popen[bytes]] = {}
    for n in names:
        path = tmp / f"{n}.npy"
        np.save(path, inputs[n])
        stall = ["--stall-at", VICTIMS[n]] if n in VICTIMS else []
        log = (tmp / f"{n}.log").open("wb")
        clients[n] = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*secagg, "client", "--server", address, "--input", str(path), "--name", n,
             "--insecure", "--timeout", "60", *stall],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        procs.append(clients[n])
    for victim, round_name in VICTIMS.items():
        marker = f"stalling before {round_name}"
        deadline = time.monotonic() + TIMEOUT
        while marker not in (tmp / f"{victim}.log").read_text(errors="replace"):
            if time.monotonic() > deadline or clients[victim].poll() is not None:
                _say((tmp / f"{victim}.log").read_text(errors="replace"))
                raise SystemExit(f"{victim} never reached {round_name}")
            time.sleep(0.02)
        clients[victim].send_signal(signal.SIGKILL)
        clients[victim].wait()
        _say(f"  SIGKILLed {victim} (pid {clients[victim].pid}) during {round_name}")
    codes = {n: p.wait(TIMEOUT) for n, p in clients.items()}
    server_code = server.wait(TIMEOUT)
    elapsed = time.perf_counter() - started
    _say("")
    _say((tmp / "server.log").read_text(errors="replace").rstrip())
    _say("")
    if server_code != 0:
        _say(f"server exited with {server_code}: the round did not produce a sum")
        return 1
    report = json.loads((out / "report.json").read_text())
    total = np.load(out / "sum.npy")
    included = report["included"]
    plain = np.zeros(DIM, dtype=np.uint64)
    for n in included:
        plain += inputs[n]
    plain &= np.uint64((1 << BITS) - 1)
    matches = bool(np.array_equal(total.astype(np.uint64), plain))
    ok_clients = sorted(n for n, c in codes.items() if c == 0)
    _say(f"round {report['round_id']}: n={report['clients']} k={report['degree']} "
         f"t={report['threshold']} finished in {elapsed:.1f}s")  # fmt: skip
    _say(f"included ({len(included)}): {', '.join(included)}")
    for name, reason in report["dropped"].items():
        where = report["rounds"][0]["dropped_in"].get(name, {}).get("round", "?")
        _say(f"dropped: {name} in {where} ({reason})")
    _say(f"clients that exited 0 (told they were included): {len(ok_clients)}")
    _say(f"sum[:5] = {total[:5].tolist()}")
    _say(f"plain sum of the included inputs [:5] = {plain[:5].tolist()}")
    verdict = "MATCHES" if matches else "DIFFERS"
    _say(f"secure sum vs plain sum of the {len(included)} included inputs: {verdict}")
    expected_included = sorted(set(names) - set(VICTIMS))
    if not matches or included != expected_included or ok_clients != expected_included:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
