"""What an operator runs: `secagg serve` with --metrics-address, gRPC health, JSON logs,
--task, and `secagg client --rounds N`, all as real processes on loopback."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from secagg.encoding.context import context_digest
from tests.transport.helpers import (
    WAIT,
    Procs,
    free_port,
    plain_sum,
    random_vectors,
    wait_all,
)

prom_parser = pytest.importorskip("prometheus_client.parser", reason="extra 'metrics' missing")
health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2", reason="extra 'metrics' missing")
from grpc_health.v1 import health_pb2_grpc  # noqa: E402

# Deadlines long enough for client processes that start slowly on a loaded machine (under
# pytest -n, with other jobs): only the stalled client of the metrics test waits one out.
FAST = ("--insecure", "--join-timeout", "120", "--phase-timeout", "20")


def _wait_file(path: Path, proc: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert proc.poll() is None, "the server exited"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in prom_parser.text_string_to_metric_families(text)
        for s in family.samples
    }


def _health(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return int(reply.status)


def test_metrics_scraped_during_a_round_match_the_report(procs: Procs) -> None:
    port, mport = free_port(), free_port()
    names = ["a", "b", "c", "d"]
    vectors = random_vectors(names, 32, 16, seed=5)
    server = procs.serve(
        port, "--clients", "4", "--dim", "32", "--bits", "16", "--rounds", "2",
        "--metrics-address", f"127.0.0.1:{mport}", *FAST,
    )  # fmt: skip
    clients = [
        procs.client(port, n, vectors[n], "--insecure",
                     *(["--stall-at", "masked-input"] if n == "d" else []))
        for n in names
    ]  # fmt: skip
    out = procs.tmp / "server-out"
    _wait_file(out / "report-round-1.json", server)
    assert wait_all(clients) == [0, 0, 0, 1]
    report = json.loads((out / "report-round-1.json").read_text())
    assert report["dropped"] == {"d": "no-response"}
    # Round 2 is waiting for its clients now: the server is up and serving.
    m = _scrape(mport)
    assert m[("secagg_rounds_started_total", ())] == 1
    assert m[("secagg_rounds_completed_total", ())] == 1
    assert m[("secagg_clients_joined_total", ())] == 4
    assert m[("secagg_clients_included_total", ())] == len(report["included"]) == 3
    assert m[("secagg_clients_dropped_total", (("reason", "no-response"),))] == 1
    for phase, io in report["bytes"].items():
        assert m[("secagg_bytes_received_total", (("phase", phase),))] == io["received"]
        assert m[("secagg_bytes_sent_total", (("phase", phase),))] == io["sent"]
    for phase in report["timings"]:
        assert m[("secagg_phase_duration_seconds_count", (("phase", phase),))] == 1
    assert m[("secagg_running_sum_bytes", ())] == 0
    assert m[("secagg_waiting_clients", ())] == 0
    serving = health_pb2.HealthCheckResponse.SERVING
    assert _health(port) == serving
    assert _health(port, "secagg.v1.Aggregation") == serving
    late = [procs.client(port, n, vectors[n], "--insecure") for n in names]
    assert wait_all(late) == [0] * 4
    assert wait_all([server]) == [0]
    total = np.load(out / "sum-round-2.npy")
    assert np.array_equal(total.astype(np.uint64), plain_sum(vectors, names, 16))


def test_json_logs_name_rounds_and_hold_no_secrets(procs: Procs) -> None:
    port = free_port()
    names = ["j1", "j2", "j3"]
    # Large distinctive words: any vector (or masked vector) in the log would show them.
    vectors = random_vectors(names, 24, 32, seed=9)
    task = procs.tmp / "model.bin"
    task.write_bytes(b"the global model" * 100)
    server = procs.serve(
        port, "--clients", "3", "--dim", "24", "--bits", "32", "--log-format", "json",
        "--task", str(task), *FAST,
    )  # fmt: skip
    clients = [procs.client(port, n, vectors[n], "--insecure", "--json") for n in names]
    assert wait_all(clients) == [0, 0, 0]
    assert wait_all([server]) == [0]
    report = json.loads((procs.tmp / "server-out" / "report-round-1.json").read_text())
    digest = context_digest(task.read_bytes()).hex()
    assert report["task_digest"] == digest
    for n in names:
        outcome = json.loads([x for x in procs.log(n).splitlines() if x.startswith("{")][-1])
        assert outcome["task_digest"] == digest
    lines = procs.log("server").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    # Known, left for a follow-up: grpc.aio itself may print a CancelledError traceback for an
    # RPC still being scheduled when the server stops; it is the only non-JSON text allowed.
    stray = [x for x in lines if not x.startswith("{")]
    assert all(_grpc_shutdown_noise(x) for x in stray), stray
    assert records, "no log lines"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    in_round = [r for r in records if "round" in r]
    assert in_round
    assert all(r["round"] == 1 for r in in_round)
    assert {r["round_id"] for r in in_round if r["round_id"]} == {report["round_id"]}
    text = procs.log("server")
    # No long hex or base64 blobs (keys, shares, ciphertexts) but the round id itself.
    blobs = set(re.findall(r"[0-9a-fA-F]{24,}|[A-Za-z0-9+/]{40,}={0,2}", text))
    assert blobs <= {report["round_id"]}, blobs
    numbers = set(re.findall(r"\d{6,}", text))
    words = {str(int(w)) for v in vectors.values() for w in v}
    assert not numbers & words


def _grpc_shutdown_noise(line: str) -> bool:
    return (
        line.startswith(("Traceback", "  ", "asyncio.exceptions.CancelledError"))
        or not line.strip()
    )


def test_client_rounds_repeats_a_fixed_input(procs: Procs) -> None:
    port = free_port()
    names = ["r1", "r2"]
    vectors = random_vectors(names, 8, 16, seed=3)
    server = procs.serve(
        port, "--clients", "2", "--dim", "8", "--bits", "16", "--rounds", "3", *FAST
    )
    clients = [
        procs.client(port, n, vectors[n], "--insecure", "--json", "--rounds", "3", "--wait", "5")
        for n in names
    ]
    assert wait_all(clients) == [0, 0], procs.log("r1")
    assert wait_all([server]) == [0]
    for n in names:
        lines = [json.loads(x) for x in procs.log(n).splitlines() if x.startswith("{")]
        assert [o["round"] for o in lines] == [1, 2, 3]
        assert all(o["included"] for o in lines)
    report = procs.report()
    assert [r["status"] for r in report["rounds"]] == ["complete"] * 3
    assert np.array_equal(procs.total().astype(np.uint64), plain_sum(vectors, names, 16))


def test_client_task_command_gets_the_task(procs: Procs) -> None:
    """--task-command reads the round's task and writes the vector the client submits."""
    port = free_port()
    task = procs.tmp / "task.bin"
    task.write_bytes(bytes([5, 6, 7, 8]))
    script = procs.tmp / "make_input.py"
    script.write_text(
        "import os, numpy as np\n"
        "data = open(os.environ['SECAGG_TASK'], 'rb').read()\n"
        "np.save(os.environ['SECAGG_OUTPUT'], np.frombuffer(data, np.uint8).astype(np.uint32))\n"
    )
    server = procs.serve(port, "--clients", "2", "--dim", "4", "--bits", "16",
                         "--task", str(task), *FAST)  # fmt: skip
    from tests.transport.helpers import PY, SECAGG

    clients = [
        procs.spawn(
            [*SECAGG, "client", "--server", f"127.0.0.1:{port}", "--name", n, "--insecure",
             "--dim", "4", "--task-command", f"{PY} {script}", "--wait", "5"],
            procs.tmp / f"{n}.log",
        )
        for n in ("t1", "t2")
    ]  # fmt: skip
    assert wait_all(clients) == [0, 0], procs.log("t1")
    assert wait_all([server]) == [0]
    assert np.array_equal(procs.total().astype(np.uint64), np.array([10, 12, 14, 16]))
