"""`secagg serve --query` / `secagg client --query --values` with real processes on loopback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from secagg.analytics import AnalyticsRound, DistributedDP, Histogram
from tests.transport.helpers import SECAGG, Procs, cleanup, free_port, wait_all

# A join deadline long enough for client processes slow to start on a loaded machine (the
# round starts as soon as all joined, so it costs nothing otherwise).
FAST = ("--insecure", "--join-timeout", "120", "--phase-timeout", "20")
DOMAIN = ["smile", "heart", "fire", "cry"]
QUERY = Histogram(domain=DOMAIN, max_contributions=2, max_per_item=1)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        cleanup(p)


def _query_file(tmp: Path, query: Histogram = QUERY, name: str = "query.json") -> Path:
    path = tmp / name
    path.write_text(query.to_json())
    return path


def _client(
    procs: Procs, port: int, name: str, values: Sequence[str], query: Path, *options: str
) -> subprocess.Popen[bytes]:
    path = procs.tmp / f"{name}.txt"
    path.write_text("".join(f"{v}\n" for v in values))  # one item per line
    args = ["client", "--server", f"127.0.0.1:{port}", "--query", str(query)]
    args += ["--values", str(path), "--name", name, "--timeout", "60", "--insecure", *options]
    # The rounds here are small (n = 10) with thresholds chosen to survive the kills, below
    # what a default client accepts at n = 10 (t = 9): the clients opt out explicitly.
    args.append("--allow-weak-parameters")
    return procs.spawn([*SECAGG, *args], procs.tmp / f"{name}.log")


def _analytics(procs: Procs) -> dict[str, object]:
    return json.loads((procs.tmp / "server-out" / "analytics.json").read_text())


def test_exact_histogram_with_clients_killed_in_each_round(procs: Procs) -> None:
    port = free_port()
    query = _query_file(procs.tmp)
    rng = np.random.default_rng(3)
    names = [f"c{i}" for i in range(10)]
    values = {n: [str(v) for v in rng.choice([*DOMAIN, "other"], size=5)] for n in names}
    server = procs.serve(
        port,
        "--clients",
        "10",
        "--degree",
        "9",
        "--threshold",
        "6",
        "--query",
        str(query),
        "--min-contributors",
        "5",
        *FAST,
    )
    stall = {"c0": "advertise-keys", "c1": "share-keys", "c2": "masked-input", "c3": "unmasking"}
    started = {
        n: _client(
            procs,
            port,
            n,
            values[n],
            query,
            *(["--stall-at", stall[n]] if n in stall else []),
            "--min-contributors",
            "5",
        )
        for n in names
    }
    for victim, round_name in stall.items():
        procs.kill_when(started[victim], victim, f"stalling before {round_name}")
    survivors = [started[n] for n in names if n not in stall]
    assert wait_all(survivors) == [0] * len(survivors)
    assert wait_all([server]) == [0], procs.log("server")
    report = procs.report()
    assert report["included"] == ["c3", *names[4:]]
    result = _analytics(procs)
    assert result["released"] is True
    expected = sum(QUERY.encode(values[n]) for n in report["included"])
    assert [row["count"] for row in result["counts"]] == expected.tolist()
    assert [row["label"] for row in result["counts"]] == DOMAIN
    csv_lines = (procs.tmp / "server-out" / "analytics.csv").read_text().splitlines()
    assert csv_lines[0] == "label,count,stddev,interval_low,interval_high"
    assert csv_lines[1].startswith(f"smile,{float(expected[0])},")
    assert "smile" in procs.log("server")


def test_below_min_contributors_nothing_is_released(procs: Procs) -> None:
    port = free_port()
    query = _query_file(procs.tmp)
    server = procs.serve(port, "--clients", "3", "--query", str(query), *FAST)
    clients = [_client(procs, port, f"c{i}", ["fire"], query) for i in range(3)]
    assert wait_all(clients) == [0, 0, 0]  # they were in the sum the server did not release
    assert wait_all([server]) == [1]
    result = _analytics(procs)
    assert result["released"] is False
    assert result["reason"] == "too-few-contributors"
    assert result["counts"] == []
    assert not (procs.tmp / "server-out" / "sum.npy").exists()
    assert not (procs.tmp / "server-out" / "analytics.csv").exists()
    assert "nothing released" in procs.log("server")


@pytest.mark.adversarial
def test_client_with_another_query_refuses_and_dp_answer_has_intervals(procs: Procs) -> None:
    port = free_port()
    query = _query_file(procs.tmp)
    other = _query_file(
        procs.tmp, Histogram(domain=DOMAIN, max_contributions=50), name="other.json"
    )
    dp = ("--epsilon", "2", "--min-contributors", "3")
    server = procs.serve(
        port,
        "--clients",
        "4",
        "--degree",
        "3",
        "--threshold",
        "3",
        "--query",
        str(query),
        *dp,
        *FAST,
    )
    good = [_client(procs, port, f"c{i}", ["fire", "cry"], query, *dp) for i in range(3)]
    refuser = _client(procs, port, "mallory-target", ["fire"] * 50, other, *dp)
    assert wait_all([refuser]) == [1]
    assert wait_all(good) == [0, 0, 0]
    assert wait_all([server]) == [0], procs.log("server")
    log = procs.log("mallory-target")
    assert "context-mismatch" in log
    assert "refused" in log
    result = _analytics(procs)
    assert result["released"] is True
    assert result["epsilon"] == 2.0
    assert result["query_digest"] == QUERY.digest().hex()
    spec = AnalyticsRound(QUERY, min_clients=3, dp=DistributedDP(epsilon=2.0))
    assert result["round_digest"] == spec.digest().hex()
    truth = {"smile": 0, "heart": 0, "fire": 3, "cry": 3}
    for row in result["counts"]:
        low, high = row["interval"]
        assert low < row["count"] < high
        assert row["stddev"] > 0
        assert abs(row["count"] - truth[row["label"]]) < 6 * row["stddev"]
    assert "95% interval" in procs.log("server")
