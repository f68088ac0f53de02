"""`secagg serve` under bad conditions, with real processes: squatters, wrong D, hostile names,
signals, and what the clients and the console are told."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.transport.helpers import (
    Procs,
    free_port,
    plain_sum,
    random_vectors,
    wait_all,
    wait_for_text,
)


@pytest.mark.adversarial
def test_idle_squatters_and_a_wrong_dim_do_not_block_honest_clients(procs: Procs) -> None:
    """Four joiners that say Hello and then nothing take every slot of a 4-client round first;
    a fifth claims D = 999. The honest clients still get the round: the squatters lose their
    slots after --keys-timeout, the wrong D is refused alone."""
    port = free_port()
    honest = ["h0", "h1", "h2", "h3"]
    vectors = random_vectors(honest, 50, 32, seed=20)
    server = procs.serve(
        port, "--clients", "4", "--dim", "50", "--bits", "32", "--insecure",
        "--keys-timeout", "1", "--phase-timeout", "60", "--join-timeout", "60",
    )  # fmt: skip
    squatters = [f"squat{i}" for i in range(4)]
    squatting = {n: procs.adversary(port, "squat", n, "50", name=n) for n in squatters}
    for n, proc in squatting.items():
        wait_for_text(procs.tmp / f"{n}.log", "got welcome", proc)  # they hold every slot
    wrong = procs.adversary(port, "squat", "wrong-dim", "999", name="wrong-dim")
    assert wait_all([wrong]) == [0]
    assert "got reject wrong-length" in procs.log("wrong-dim")
    clients = [procs.client(port, n, vectors[n], "--insecure") for n in honest]
    assert wait_all(clients) == [0] * 4
    assert wait_all([server, *squatting.values()]) == [0] * 5, procs.log("server")
    report = procs.report()
    assert report["status"] == "complete"
    assert report["included"] == honest
    assert report["rounds"][0]["rejected"] == dict.fromkeys(squatters, "no-response")
    assert np.array_equal(procs.total().astype(np.uint64), plain_sum(vectors, honest, 32))
    for n in squatters:
        assert "got abort no-response" in procs.log(n)


@pytest.mark.adversarial
def test_hostile_names_print_as_text_on_a_terminal(procs: Procs) -> None:
    """A client named ``[/]`` (rich markup) must not crash a server whose stderr is a terminal."""
    port = free_port()
    names = ["a", "b"]
    vectors = random_vectors(names, 10, 16, seed=21)
    server = procs.serve(
        port, "--clients", "3", "--dim", "10", "--bits", "16", "--insecure",
        env={"TTY_COMPATIBLE": "1"},  # rich then treats stderr as a terminal
    )  # fmt: skip
    hostile = procs.adversary(port, "duplicate", "[/]", "10", name="hostile")
    clients = [procs.client(port, n, vectors[n], "--insecure") for n in names]
    assert wait_all(clients) == [0, 0]
    assert wait_all([hostile]) == [0], procs.log("hostile")
    assert wait_all([server]) == [0], procs.log("server")
    assert procs.report()["included"] == ["[/]", "a", "b"]
    assert "rejected a second connection for name '[/]'" in procs.log("server")


def test_sigterm_mid_round_writes_an_interrupted_report_and_tells_the_clients(
    procs: Procs,
) -> None:
    port = free_port()
    names = ["c0", "c1", "c2"]
    vectors = random_vectors(names, 20, 32, seed=22)
    server = procs.serve(
        port, "--clients", "3", "--dim", "20", "--bits", "32", "--insecure",
        "--phase-timeout", "120",
    )  # fmt: skip
    clients = [
        procs.client(port, n, vectors[n], "--insecure",
                     *(["--stall-at", "masked-input"] if n == "c2" else []))
        for n in names
    ]  # fmt: skip
    wait_for_text(procs.tmp / "c2.log", "stalling before masked-input", clients[2])
    wait_for_text(procs.tmp / "server.log", "share-keys done", server)
    server.send_signal(signal.SIGTERM)
    try:
        # Generous: on a loaded 2-core CI machine the shutdown (abort to every client, report
        # files fsynced, gRPC drain) once took longer than the default wait.
        code = wait_all([server], timeout=150)
    except subprocess.TimeoutExpired:
        log = procs.log("server")
        raise AssertionError(f"server still running 150 s after SIGTERM:\n{log}") from None
    assert code == [128 + signal.SIGTERM]
    assert "stopped by SIGTERM" in procs.log("server")
    report = procs.report()
    assert report["status"] == "interrupted"
    assert report["abort_reason"] == "server-shutdown"
    assert "SIGTERM" in report["abort_detail"]
    assert "masked-input" in report["abort_detail"]
    assert report["sum_file"] is None
    out = procs.tmp / "server-out"
    assert json.loads((out / "report-round-1.json").read_text())["status"] == "interrupted"
    assert not (out / "sum.npy").exists()
    assert wait_all(clients) == [1, 1, 1]
    for n in names:
        assert "server-shutdown" in procs.log(n)


def test_each_round_is_written_as_it_ends_and_sigint_keeps_it(procs: Procs) -> None:
    port = free_port()
    first = random_vectors(["a", "b", "c"], 16, 32, seed=23)
    server = procs.serve(
        port, "--clients", "3", "--dim", "16", "--bits", "32", "--insecure", "--rounds", "2",
        "--join-timeout", "120",
    )  # fmt: skip
    assert wait_all([procs.client(port, n, v, "--insecure") for n, v in first.items()]) == [0] * 3
    out = procs.tmp / "server-out"
    wait_for_text(out / "report.json", '"status": "complete"', server)
    assert server.poll() is None  # round 2 is waiting for clients: round 1 is already on disk
    assert np.array_equal(
        np.load(out / "sum-round-1.npy").astype(np.uint64), plain_sum(first, list(first), 32)
    )
    assert np.array_equal(np.load(out / "sum.npy"), np.load(out / "sum-round-1.npy"))
    lone = procs.client(port, "late", np.arange(16, dtype=np.uint32), "--insecure")
    wait_for_text(procs.tmp / "late.log", "waiting to join", lone)
    time.sleep(2.0)  # let the (idle) server take its Hello into the lobby
    server.send_signal(signal.SIGINT)
    assert wait_all([server]) == [128 + signal.SIGINT]
    report = procs.report()
    assert [r["status"] for r in report["rounds"]] == ["complete", "interrupted"]
    assert report["abort_reason"] == "server-shutdown"
    assert report["sum_round"] == 1
    assert json.loads((out / "report-round-2.json").read_text())["status"] == "interrupted"
    assert wait_all([lone]) == [1]
    assert "server-shutdown" in procs.log("late")
