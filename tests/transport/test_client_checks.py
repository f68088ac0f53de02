"""What a `secagg client` process checks itself over the network, with real processes.

Identities on the wire (a signed Hello over the server's challenge), the semi-honest refusal of
a client holding an identity, the context file on both sides, and what the client says when
the server is missing, speaks TLS, or sends markup.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from secagg.identity.registry import (
    IdentityRegistryFile,
    RegistryEntry,
    generate_identity,
    save_identity,
    save_registry,
)
from tests.transport.helpers import (
    HERE,
    PY,
    SECAGG,
    Procs,
    free_port,
    plain_sum,
    random_vectors,
    wait_all,
    wait_for_text,
    wait_listening,
)

# A join deadline long enough for client processes slow to start on a loaded machine (the
# round starts as soon as all joined, so it costs nothing otherwise).
FAST = ("--insecure", "--join-timeout", "120", "--phase-timeout", "20")


def _identities(procs: Procs, registered: list[str], unregistered: tuple[str, ...] = ()) -> Path:
    keys = {n: generate_identity() for n in [*registered, *unregistered]}
    for n, key in keys.items():
        save_identity(key, procs.tmp / f"{n}.key")
    registry = procs.tmp / "registry.json"
    save_registry(
        IdentityRegistryFile(RegistryEntry(keys[n].public_bytes, name=n) for n in registered),
        registry,
    )
    return registry


def _identity_args(procs: Procs, name: str, registry: Path) -> tuple[str, ...]:
    return ("--identity", str(procs.tmp / f"{name}.key"), "--registry", str(registry))


def _outcome(procs: Procs, name: str) -> dict[str, object]:
    lines = [ln for ln in procs.log(name).splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])  # type: ignore[no-any-return]


@pytest.mark.adversarial
def test_an_impostor_cannot_take_a_registered_name(procs: Procs) -> None:
    """Impostors join first under registered names (unsigned, and signed with a key of their
    own); they are refused with bad-signature, the owners complete the round, nobody is
    blamed."""
    names = ["site-0", "site-1", "site-2", "site-3"]
    registry = _identities(procs, names, unregistered=("mallory",))
    port = free_port()
    vectors = random_vectors(names, 50, 20, seed=21)
    server = procs.serve(
        port, "--clients", "4", "--dim", "50", "--bits", "20", "--mode", "malicious", "--registry",
        str(registry), *FAST,
    )  # fmt: skip
    impostors = [
        procs.adversary(port, "impostor", "site-0", "50", name="imp-unsigned"),
        procs.adversary(
            port, "impostor", "site-1", "50", str(procs.tmp / "mallory.key"), name="imp-signed"
        ),
    ]
    assert wait_all(impostors) == [0, 0], [procs.log(n) for n in ("imp-unsigned", "imp-signed")]
    clients = [
        procs.client(port, n, vectors[n], "--insecure", *_identity_args(procs, n, registry))
        for n in names
    ]
    assert wait_all(clients) == [0] * 4, [procs.log(n) for n in names]
    assert wait_all([server]) == [0], procs.log("server")
    report = procs.report()
    assert report["included"] == names
    assert report["dropped"] == {}
    assert report["rounds"][0]["rejected"] == {}
    assert "bad-signature" not in json.dumps(report)
    assert np.array_equal(procs.total().astype(np.uint64), plain_sum(vectors, names, 20))
    assert "not signed by its registered identity" in procs.log("server")


@pytest.mark.adversarial
def test_a_client_with_an_identity_refuses_a_semi_honest_server(procs: Procs) -> None:
    names = ["a", "b", "c"]
    registry = _identities(procs, [*names, "careful"])
    port = free_port()
    vectors = random_vectors([*names, "careful"], 40, 16, seed=22)
    server = procs.serve(
        port,
        "--clients",
        "4",
        "--dim",
        "40",
        "--min-clients",
        "3",
        "--bits",
        "16",
        "--degree",
        "3",
        *FAST,
    )
    identity = _identity_args(procs, "careful", registry)
    careful = procs.client(port, "careful", vectors["careful"], "--insecure", *identity)
    wait_for_text(procs.tmp / "server.log", "listening", server)
    others = [procs.client(port, n, vectors[n], "--insecure") for n in names]
    assert wait_all([careful]) == [1]
    log = procs.log("careful")
    assert "mode-mismatch" in log
    assert "refusing to run without malicious-mode checks" in log
    assert "sent advertise-keys" not in log
    assert wait_all(others) == [0] * 3
    assert wait_all([server]) == [0], procs.log("server")
    report = procs.report()
    assert "careful" not in report["included"]
    assert report["dropped"] == {"careful": "client-aborted"}
    assert np.array_equal(procs.total().astype(np.uint64), plain_sum(vectors, names, 16))


@pytest.mark.adversarial
def test_context_files_over_grpc_in_malicious_mode(procs: Procs) -> None:
    """The server announces its model file's digest; a client handed another file aborts."""
    names = ["m0", "m1", "m2", "m3"]
    registry = _identities(procs, names)
    model, other = procs.tmp / "model.bin", procs.tmp / "other.bin"
    model.write_bytes(b"global model v7" * 1000)
    other.write_bytes(b"global model v7" * 999 + b"global model v8")
    port = free_port()
    vectors = random_vectors(names, 30, 16, seed=23)
    server = procs.serve(
        port, "--clients", "4", "--dim", "30", "--bits", "16", "--mode", "malicious",
        "--degree", "3", "--threshold", "3", "--registry", str(registry),
        "--context", str(model), *FAST,
    )  # fmt: skip
    clients = {}
    for n in names:
        context = ("--context", str(other if n == "m3" else model))
        identity = _identity_args(procs, n, registry)
        weak = ("--allow-weak-parameters",)  # n = 4 with k = t = 3: small on purpose
        clients[n] = procs.client(
            port, n, vectors[n], "--insecure", "--json", *weak, *context, *identity
        )
    assert wait_all(list(clients.values())) == [0, 0, 0, 1], [procs.log(n) for n in names]
    assert _outcome(procs, "m3")["reason"] == "context-mismatch"
    assert wait_all([server]) == [0], procs.log("server")
    report = procs.report()
    assert report["included"] == ["m0", "m1", "m2"]
    assert report["dropped"] == {"m3": "client-aborted"}
    assert np.array_equal(
        procs.total().astype(np.uint64), plain_sum(vectors, ["m0", "m1", "m2"], 16)
    )


def test_a_semi_honest_client_with_a_context_checks_it(procs: Procs) -> None:
    """A server that announces no context (or another) is refused by a client given one."""
    model = procs.tmp / "model.bin"
    model.write_bytes(b"weights")
    port = free_port()
    vectors = random_vectors(["x", "y", "z"], 20, 16, seed=24)
    server = procs.serve(
        port, "--clients", "3", "--dim", "20", "--min-clients", "2", "--bits", "16", *FAST
    )
    picky = procs.client(port, "z", vectors["z"], "--insecure", "--json", "--context", str(model))
    others = [procs.client(port, n, vectors[n], "--insecure") for n in ("x", "y")]
    assert wait_all([picky]) == [1]
    assert _outcome(procs, "z")["reason"] == "context-mismatch"
    assert wait_all(others) == [0, 0]
    assert wait_all([server]) == [0]
    assert procs.report()["dropped"] == {"z": "client-aborted"}


def test_no_server_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(4, dtype=np.uint32))
    port = free_port()
    proc = subprocess.run(
        [*SECAGG, "client", "--server", f"127.0.0.1:{port}", "--input", str(path), "--insecure"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no server answered (server-unreachable)" in lines[0]
    assert f"127.0.0.1:{port}" in lines[0]
    assert "UNAVAILABLE" not in proc.stderr
    assert "failed to connect to all addresses" not in proc.stderr


def test_wait_retries_until_the_server_is_up(procs: Procs) -> None:
    port = free_port()
    vectors = random_vectors(["early", "late"], 16, 32, seed=25)
    early = procs.client(port, "early", vectors["early"], "--insecure", "--wait", "60")
    wait_for_text(procs.tmp / "early.log", "retrying in", early)
    server = procs.serve(port, "--clients", "2", "--dim", "16", "--bits", "32", *FAST)
    late = procs.client(port, "late", vectors["late"], "--insecure")
    assert wait_all([early, late]) == [0, 0], procs.log("early")
    assert wait_all([server]) == [0]
    assert procs.report()["included"] == ["early", "late"]


def test_wait_gives_up_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(4, dtype=np.uint32))
    proc = subprocess.run(
        [*SECAGG, "client", "--server", f"127.0.0.1:{free_port()}", "--input", str(path),
         "--insecure", "--wait", "1.5", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["reason"] == "server-unreachable"
    assert proc.stderr.count("retrying in") >= 2


@pytest.mark.adversarial
@pytest.mark.parametrize("mode", ["reject-markup", "abort-markup"])
def test_server_text_is_escaped_before_it_is_printed(procs: Procs, mode: str) -> None:
    port = free_port()
    fake = procs.spawn([PY, str(HERE / "fake_server.py"), mode, str(port)], procs.tmp / "fake.log")
    wait_listening(port, fake)
    client = procs.client(port, "victim", np.arange(8, dtype=np.uint32), "--insecure")
    assert wait_all([client]) == [1]
    log = procs.log("victim")
    assert "Traceback" not in log
    assert "MarkupError" not in log
    assert "not included" in log
    assert "[/] closing [bold]nothing[/bold]" in log  # shown as text, not interpreted
    assert "\x1b" not in log
    assert "\\x1b[31mred" in log
