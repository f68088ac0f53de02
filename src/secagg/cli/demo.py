"""``make demo``: one real secure-aggregation round over loopback, told in order.

Starts ``secagg serve`` and ``--clients`` ``secagg client`` processes on 127.0.0.1. Each client
holds a short vector of small numbers. Two clients are SIGKILLed mid-round (one in share-keys,
one in masked-input: each is held at its round with the clients' testing hook ``--stall-at``
and then killed, so the server sees a real disconnect at a known round). The story is printed
as it happens: what each client holds, what k, t, D and b mean, the server's log lines
interleaved with the kills, what the server learned, the bytes each party sent, and finally
the check of the secure sum against the plain sum of the included inputs, computed here from
the inputs this script wrote. Exits non-zero if anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

DIM = 6
BITS = 16
TIMEOUT = 120.0
_PARAMS = re.compile(r"k=(\d+), t=(\d+)")
_BEFORE = {"share-keys": "advertise-keys", "masked-input": "share-keys"}
_GRACE = 5.0  # seconds to wait for the server's line about the previous phase before a kill
_DROP_STORY = {
    "share-keys": "it left before sharing its secrets, so no one masked with it",
    "masked-input": "its neighbours had masked with it: the server rebuilt its mask key from "
    "t shares\n             and removed those masks",
}


# The smallest round whose default parameters survive the demo's two kills (n = 16: t = 12).
MIN_CLIENTS = 16


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(line: str = "") -> None:
    print(line, flush=True)


def _explain_parameters(n: int, k: int, t: int) -> None:
    graph = "every client neighbours every other, classic SecAgg" if k == n - 1 else "SecAgg+"
    _say(f"  The round's parameters, the server's default choice: k = {k} ({graph}) and t = {t}")
    _say("  (high enough that colluding clients cannot rebuild a secret, low enough that two")
    _say("  may die):")
    _say(f"    n = {n}: clients in the round.  D = {DIM}: numbers per vector.")
    _say(f"    b = {BITS}: all arithmetic is modulo 2^{BITS} = {1 << BITS:,}, wide enough that the")
    _say("      true sum of everyone's numbers never wraps around.")
    _say(f"    k = {k}: each client's neighbours. A client adds one random mask per neighbour")
    _say("      (each pair's masks cancel in the sum) and one self mask, so its vector on the")
    _say("      wire looks like random noise.")
    _say(f"    t = {t}: a client splits its two mask secrets into k + 1 = {k + 1} Shamir shares;")
    _say(f"      any {t} of them rebuild a secret, fewer reveal nothing. The round survives")
    _say(f"      dropouts as long as each client keeps {t} share-holders online.")


class _Story:
    """Follows the server's log file and prints each new line once, in order."""

    def __init__(self, log: Path, n: int) -> None:
        self.log = log
        self.n = n
        self.offset = 0
        self.explained = False
        self.seen = ""

    def catch_up(self) -> None:
        if not self.log.exists():
            return
        with self.log.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for raw in complete.decode(errors="replace").splitlines():
            line = raw.removeprefix("secagg serve: ").strip()
            self.seen += line + "\n"
            if line:
                _say(f"  server | {line}")
            found = _PARAMS.search(line)
            if found and not self.explained:
                self.explained = True
                _explain_parameters(self.n, int(found.group(1)), int(found.group(2)))


def _victims(names: Sequence[str]) -> dict[str, str]:
    """Two clients to kill: one before its shares go out, one before its masked input."""
    return {names[len(names) // 3]: "share-keys", names[(2 * len(names)) // 3]: "masked-input"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m secagg.cli.demo", description=__doc__)
    parser.add_argument(
        "--clients", type=int, default=MIN_CLIENTS, help=f"client processes (>= {MIN_CLIENTS})"
    )
    args = parser.parse_args(argv)
    if args.clients < MIN_CLIENTS:
        parser.error(
            f"--clients must be at least {MIN_CLIENTS}: two clients are killed, and below "
            f"{MIN_CLIENTS} the default parameters (private to 2^-40 at 5% corrupt clients) "
            "need nearly every client to stay"
        )
    secagg = [sys.executable, "-m", "secagg.cli.main"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="secagg-demo-") as tmp_name:
        try:
            return _run(Path(tmp_name), args.clients, secagg, env, procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()


def _run(
    tmp: Path,
    n: int,
    secagg: list[str],
    env: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
) -> int:
    rng = np.random.default_rng(2017)  # demo inputs only; the protocol's randomness is separate
    names = [f"client-{i:02d}" for i in range(1, n + 1)]
    inputs = {name: rng.integers(0, 10, DIM, dtype=np.uint32) for name in names}
    victims = _victims(names)
    address = f"127.0.0.1:{_free_port()}"
    out = tmp / "out"

    _introduce(address, inputs, victims)
    started = time.perf_counter()
    server_log = tmp / "server.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*secagg, "serve", "--address", address, "--clients", str(n), "--bits", str(BITS),
             "--dim", str(DIM), "--output", str(out), "--insecure",
             "--join-timeout", "60", "--phase-timeout", "30"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    procs.append(server)
    story = _Story(server_log, n)
    _wait_listening(address, server, story)
    clients = _start_clients(tmp, secagg, env, address, inputs, victims, procs)
    _say(f"  demo   | started {n} clients")
    pending = _watch_round(tmp, server, story, clients, victims)
    if pending is None:
        _say("  demo   | the round did not finish in time")
        return 1
    story.catch_up()
    elapsed = time.perf_counter() - started
    outcomes = {name: _outcome(tmp / f"{name}.log") for name in names if name not in victims}
    for p in clients.values():
        p.wait(TIMEOUT)
    _say()
    if server.returncode != 0 or pending:
        _say(f"the server exited with {server.returncode}: the round did not produce a sum")
        return 1
    report = json.loads((out / "report.json").read_text())
    if not story.explained:  # the log line with k and t was not found: explain from the report
        _explain_parameters(n, int(report["degree"]), int(report["threshold"]))
    return _conclude(report, np.load(out / "sum.npy"), inputs, names, victims, outcomes, elapsed)


def _introduce(
    address: str, inputs: dict[str, np.ndarray[Any, Any]], victims: dict[str, str]
) -> None:
    """Steps 1 and 2 of the story: the clients and their vectors, the server and the victims."""
    n = len(inputs)
    _say("secagg demo: one secure-aggregation round, step by step")
    _say()
    _say(f"1. The clients. {n} client processes each hold a private vector of {DIM} small")
    _say("   numbers (think: answers to six survey questions). The server must learn their")
    _say("   sum and nothing about any single vector:")
    for name, vector in inputs.items():
        _say(f"     {name} holds {vector.tolist()}")
    _say()
    _say(f"2. The server starts on {address} and waits for {n} clients to join. Two clients")
    _say("   will be killed mid-round, as a crashed phone or a lost network would:")
    for name, round_name in victims.items():
        _say(f"     {name} dies during {round_name}")
    _say()
    _say("3. The round, as it happens:")


def _start_clients(
    tmp: Path,
    secagg: list[str],
    env: dict[str, str],
    address: str,
    inputs: dict[str, np.ndarray[Any, Any]],
    victims: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
) -> dict[str, subprocess.Popen[bytes]]:
    """One client process per input, each logging to ``<name>.log``; victims stall on cue."""
    clients: dict[str, subprocess.Popen[bytes]] = {}
    for name, vector in inputs.items():
        path = tmp / f"{name}.npy"
        np.save(path, vector)
        stall = ["--stall-at", victims[name]] if name in victims else []
        with (tmp / f"{name}.log").open("wb") as log:
            clients[name] = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [*secagg, "client", "--server", address, "--input", str(path), "--name", name,
                 "--insecure", "--timeout", "60", "--json", *stall],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        procs.append(clients[name])
    return clients


def _watch_round(
    tmp: Path,
    server: subprocess.Popen[bytes],
    story: _Story,
    clients: dict[str, subprocess.Popen[bytes]],
    victims: dict[str, str],
) -> dict[str, str] | None:
    """Tell the story until the server exits, killing each victim at its round.

    Returns the victims never killed, or None if the round outlasted :data:`TIMEOUT`.
    """
    pending = dict(victims)
    stalled: dict[str, float] = {}
    deadline = time.monotonic() + TIMEOUT
    while server.poll() is None:
        story.catch_up()
        for victim, round_name in list(pending.items()):
            text = (tmp / f"{victim}.log").read_text(errors="replace")
            if f"stalling before {round_name}" in text:
                stalled.setdefault(victim, time.monotonic())
            # Kill once the server has told of the previous phase, so the story stays in order.
            previous = f"{_BEFORE.get(round_name, '?')} done"
            if victim in stalled and (
                previous in story.seen or time.monotonic() - stalled[victim] > _GRACE
            ):
                clients[victim].send_signal(signal.SIGKILL)
                clients[victim].wait()
                _say(f"  demo   | SIGKILLed {victim} during {round_name}")
                del pending[victim]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    return pending


def _conclude(
    report: dict[str, Any],
    total: np.ndarray[Any, Any],
    inputs: dict[str, np.ndarray[Any, Any]],
    names: list[str],
    victims: dict[str, str],
    outcomes: dict[str, dict[str, Any] | None],
    elapsed: float,
) -> int:
    included = list(report["included"])
    rounds = report["rounds"][0]
    _say(f"4. What the server learned, after {elapsed:.1f}s: one vector, the sum of the")
    _say(f"   {len(included)} included clients' inputs: {total.tolist()}")
    _say(f"   included: {', '.join(included)}")
    for name, reason in report["dropped"].items():
        where = rounds.get("dropped_in", {}).get(name, {}).get("round", "?")
        _say(f"   dropped:  {name} in {where} ({reason}): its input is not in the sum;")
        _say(f"             {_DROP_STORY.get(where, 'the round went on without it')}")
    _say()
    _say("5. Bytes sent.")
    sent = [o["bytes_sent"] for o in outcomes.values() if o is not None]
    raw_bytes = DIM * 4
    if sent:
        spread = f"{min(sent):,}" if min(sent) == max(sent) else f"{min(sent):,}-{max(sent):,}"
        _say(f"   each included client sent {spread} bytes in all:")
        _say(f"   its masked vector is {raw_bytes} bytes, the rest are keys and shares")
    phases = rounds.get("bytes", {})
    server_sent = sum(int(v.get("sent", 0)) for v in phases.values())
    server_received = sum(int(v.get("received", 0)) for v in phases.values())
    _say(f"   the server sent {server_sent:,} bytes and received {server_received:,} bytes")
    _say()
    plain = np.zeros(DIM, dtype=np.uint64)
    for name in included:
        plain += inputs[name]
    plain &= np.uint64((1 << BITS) - 1)
    matches = bool(np.array_equal(total.astype(np.uint64), plain))
    told = sorted(name for name, o in outcomes.items() if o is not None and o.get("included"))
    _say("6. The check, computed here from the inputs this script wrote:")
    _say(f"   plain sum of the {len(included)} included inputs: {plain.tolist()}")
    _say(f"   secure sum from the server:{' ' * len(str(len(included)))}          {total.tolist()}")
    _say(f"   clients told they are in the sum: {len(told)} of {len(names)}")
    verdict = "MATCHES" if matches else "DIFFERS"
    _say(f"secure sum vs plain sum of the {len(included)} included inputs: {verdict}")
    expected = sorted(set(names) - set(victims))
    return 0 if matches and included == expected and told == expected else 1


def _outcome(log: Path) -> dict[str, Any] | None:
    """The client's ``--json`` outcome line from its log, or None."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                parsed: dict[str, Any] = json.loads(line)
            except ValueError:
                return None
            return parsed
    return None


def _wait_listening(address: str, server: subprocess.Popen[bytes], story: _Story) -> None:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        story.catch_up()
        if server.poll() is not None:
            story.catch_up()
            raise SystemExit(f"the server exited early ({server.returncode})")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start listening")


if __name__ == "__main__":
    sys.exit(main())
