"""End to end over loopback with real processes: `secagg serve` and `secagg client`."""

from __future__ import annotations

import subprocess

import numpy as np

from tests.transport.helpers import Procs, free_port, plain_sum, random_vectors, wait_all

# A join deadline long enough for client processes slow to start on a loaded machine (the
# round starts as soon as all joined, so it costs nothing otherwise).
FAST = ("--insecure", "--join-timeout", "120", "--phase-timeout", "20")


def _check_sum(procs: Procs, vectors: dict[str, np.ndarray], bits: int) -> dict[str, object]:
    report = procs.report()
    total = procs.total()
    expected = plain_sum(vectors, report["included"], bits)
    assert np.array_equal(total.astype(np.uint64), expected)
    return report


def test_exact_sum_without_dropouts(procs: Procs) -> None:
    port = free_port()
    names = [f"c{i}" for i in range(5)]
    vectors = random_vectors(names, 1000, 32, seed=1)
    server = procs.serve(port, "--clients", "5", "--dim", "1000", "--bits", "32", *FAST)
    clients = [procs.client(port, n, vectors[n], "--insecure") for n in names]
    assert wait_all(clients) == [0] * 5
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 32)
    assert report["included"] == names
    assert report["dropped"] == {}
    assert report["status"] == "complete"
    assert "included" in procs.log("c0")


def test_clients_killed_in_each_round(procs: Procs) -> None:
    """SIGKILL one client in each of rounds 0, 1, 2 and 4; the round still completes."""
    port = free_port()
    names = [f"c{i}" for i in range(10)]
    vectors = random_vectors(names, 500, 20, seed=2)
    server = procs.serve(
        port, "--clients", "10", "--dim", "500", "--bits", "20", "--degree", "9",
        "--threshold", "6", *FAST,
    )  # fmt: skip
    stall = {
        "c0": "advertise-keys",
        "c1": "share-keys",
        "c2": "masked-input",
        "c3": "unmasking",
    }
    started = {
        n: procs.client(
            port,
            n,
            vectors[n],
            "--insecure",
            "--allow-weak-parameters",
            *(["--stall-at", stall[n]] if n in stall else []),
        )
        for n in names
    }
    for victim, round_name in stall.items():
        procs.kill_when(started[victim], victim, f"stalling before {round_name}")
    survivors = [started[n] for n in names if n not in stall]
    assert wait_all(survivors) == [0] * len(survivors)
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 20)
    # c3 died after its masked input arrived: its input is in the sum (late), the others not.
    assert report["included"] == ["c3", *names[4:]]
    assert report["late"] == ["c3"]
    assert report["dropped"] == dict.fromkeys(("c0", "c1", "c2"), "transport-error")
    rounds = {n: info["round"] for n, info in report["rounds"][0]["dropped_in"].items()}
    assert rounds == {
        "c0": "advertise-keys",
        "c1": "share-keys",
        "c2": "masked-input",
        "c3": "unmasking",
    }


def test_stalled_client_is_dropped_at_the_deadline(procs: Procs) -> None:
    port = free_port()
    names = [f"c{i}" for i in range(6)]
    vectors = random_vectors(names, 300, 32, seed=3)
    server = procs.serve(
        port, "--clients", "6", "--dim", "300", "--bits", "32", "--insecure", "--phase-timeout", "3"
    )
    clients = {
        n: procs.client(
            port,
            n,
            vectors[n],
            "--insecure",
            *(["--stall-at", "masked-input"] if n == "c5" else []),
        )
        for n in names
    }
    assert wait_all([clients[n] for n in names[:5]]) == [0] * 5
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 32)
    assert report["included"] == names[:5]
    assert report["dropped"] == {"c5": "no-response"}
    assert report["rounds"][0]["dropped_in"]["c5"]["detail"] == "no message for round masked-input"
    # The console names who was dropped, where and why.
    assert "dropped 'c5' in masked-input (no-response)" in procs.log("server")
    assert "1 dropped: 'c5' (no-response)" in procs.log("server")
    # The staller is told it was dropped and exits non-zero with the reason.
    assert wait_all([clients["c5"]]) == [1]
    assert "no-response" in procs.log("c5")


def test_garbage_oversized_and_misbehaving_peers(procs: Procs) -> None:
    """Junk before and after registration, a duplicate name, a vanishing uploader."""
    port = free_port()
    honest = [f"c{i}" for i in range(4)]
    dim = 200
    vectors = random_vectors([*honest, "dup"], dim, 32, seed=4)
    vectors["dup"] = np.arange(dim, dtype=np.uint32)
    server = procs.serve(
        port,
        "--clients",
        "9",
        "--dim",
        str(dim),
        "--bits",
        "32",
        "--max-message-bytes",
        "65536",
        "--degree",
        "8",
        "--threshold",
        "5",
        *FAST,
    )
    junk = [
        procs.adversary(port, "tcp-garbage"),
        procs.adversary(port, "grpc-garbage-hello"),
        procs.adversary(port, "oversized-hello"),
    ]
    assert wait_all(junk) == [0, 0, 0]
    members = [
        procs.adversary(port, "garbage-after-welcome", "garbage", str(dim)),
        procs.adversary(port, "oversized-after-welcome", "oversized", str(dim)),
        procs.adversary(port, "wrong-sender", "impostor", str(dim)),
        procs.adversary(port, "vanish", "vanisher", str(dim)),
        procs.adversary(port, "duplicate", "dup", str(dim)),
    ]
    weak = "--allow-weak-parameters"  # t = 5 of 9: below a client's default floor, on purpose
    clients = [procs.client(port, n, vectors[n], "--insecure", weak) for n in honest]
    assert wait_all(clients) == [0] * 4
    assert wait_all(members) == [0] * 5, [procs.log(m) for m in ("duplicate",)]
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 32)
    assert report["included"] == sorted([*honest, "dup"])
    dropped = report["dropped"]
    assert dropped["garbage"] == "malformed-message"
    assert dropped["oversized"] == "oversized-message"
    assert dropped["impostor"] == "malformed-message"
    assert dropped["vanisher"] == "transport-error"


def test_chunked_large_vectors_and_wide_words(procs: Procs) -> None:
    """Vectors many times the message limit go through in chunks; 40-bit rings use 8-byte words."""
    port = free_port()
    names = ["a", "b", "c"]
    dim = 60_000  # 480 KB of 8-byte words per client, limit 64 KiB per message
    vectors = random_vectors(names, dim, 40, seed=5)
    server = procs.serve(
        port,
        "--clients",
        "3",
        "--dim",
        str(dim),
        "--bits",
        "40",
        "--max-message-bytes",
        "65536",
        "--chunk-bytes",
        "16384",
        *FAST,
    )
    clients = [procs.client(port, n, vectors[n], "--insecure") for n in names]
    assert wait_all(clients) == [0] * 3
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 40)
    assert report["included"] == names
    received = report["rounds"][0]["bytes"]["masked-input"]["received"]
    assert received > 3 * dim * 8


def test_uploader_stalling_mid_vector_loses_its_slot(procs: Procs) -> None:
    port = free_port()
    names = ["c0", "c1", "c2"]
    vectors = random_vectors(names, 1000, 32, seed=6)
    server = procs.serve(
        port, "--clients", "4", "--dim", "1000", "--bits", "32", "--degree", "3",
        "--threshold", "3", "--insecure", "--phase-timeout", "30", "--upload-idle-timeout", "1",
    )  # fmt: skip
    staller = procs.adversary(port, "stall-upload", "staller", "1000")
    clients = [procs.client(port, n, vectors[n], "--insecure") for n in names]
    assert wait_all(clients) == [0] * 3
    assert wait_all([server, staller]) == [0, 0], procs.log("server")
    report = _check_sum(procs, vectors, 32)
    assert report["included"] == names
    assert report["dropped"] == {"staller": "no-response"}
    detail = report["rounds"][0]["dropped_in"]["staller"]["detail"]
    assert "middle of a masked input" in detail


def test_client_stalling_in_unmasking_stays_in_the_sum(procs: Procs) -> None:
    """Dropped for no-response after its masked input arrived: its input is in the sum (late)."""
    port = free_port()
    names = [f"c{i}" for i in range(5)]
    vectors = random_vectors(names, 200, 32, seed=12)
    server = procs.serve(
        port, "--clients", "5", "--dim", "200", "--bits", "32", "--degree", "4", "--threshold", "3",
        "--insecure", "--phase-timeout", "3",
    )  # fmt: skip
    clients = {
        n: procs.client(
            port,
            n,
            vectors[n],
            "--insecure",
            "--allow-weak-parameters",
            *(["--stall-at", "unmasking"] if n == "c4" else []),
        )
        for n in names
    }
    assert wait_all([clients[n] for n in names[:4]]) == [0] * 4
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 32)
    assert report["included"] == names
    assert report["late"] == ["c4"]
    assert report["dropped"] == {}
    # t = 3 of 5 is below a default client's floor: the server warns before the round runs.
    assert "warning: clients with the default floor will refuse" in procs.log("server")


def test_malicious_mode_with_an_identity_registry(procs: Procs) -> None:
    """Signed keys and the consistency round over the network; a stranger cannot join."""
    from secagg.identity.registry import (
        IdentityRegistryFile,
        RegistryEntry,
        generate_identity,
        save_identity,
        save_registry,
    )

    names = [f"site-{i}" for i in range(5)]
    keys = {n: generate_identity() for n in [*names, "stranger"]}
    for n, key in keys.items():
        save_identity(key, procs.tmp / f"{n}.key")
    registry = procs.tmp / "registry.json"
    save_registry(
        IdentityRegistryFile(RegistryEntry(keys[n].public_bytes, name=n) for n in names), registry
    )
    port = free_port()
    vectors = random_vectors([*names, "stranger"], 100, 24, seed=13)
    server = procs.serve(
        port, "--clients", "5", "--dim", "100", "--bits", "24", "--mode", "malicious",
        "--degree", "4", "--threshold", "4", "--registry", str(registry), *FAST,
    )  # fmt: skip

    def join(n: str) -> subprocess.Popen[bytes]:
        return procs.client(
            port, n, vectors[n], "--insecure", "--identity", str(procs.tmp / f"{n}.key"),
            "--registry", str(registry), "--allow-weak-parameters",
        )  # fmt: skip

    stranger = join("stranger")
    assert wait_all([stranger]) == [1]
    assert "unknown-client" in procs.log("stranger")
    clients = [join(n) for n in names]
    assert wait_all(clients) == [0] * 5
    assert wait_all([server]) == [0], procs.log("server")
    report = _check_sum(procs, vectors, 24)
    assert report["included"] == names
    assert report["mode"] == "malicious"
    assert "consistency-check" in report["timings"]
