"""`secagg serve` refuses bad addresses, files and parameters in one line, before it starts."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.transport.helpers import SECAGG, free_port

BASE = ("serve", "--clients", "3", "--dim", "8", "--insecure")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SECAGG, *args], capture_output=True, text=True, timeout=60, check=False)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) <= 3, proc.stderr
    text = " ".join(proc.stderr.split())  # rich and click may wrap a long line
    for needle in needles:
        assert needle in text, proc.stderr


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        (":7462", "has no host"),
        ("256.1.1.1", "not a valid IP address"),
        ("127.0.0.1:99999", "port 99999 is out of range"),
    ],
)
def test_bad_addresses(tmp_path: Path, address: str, problem: str) -> None:
    proc = _run(*BASE, "--address", address, "--output", str(tmp_path / "out"))
    _one_line_error(proc, "--address", problem)
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _run(*BASE, "--address", f"127.0.0.1:{port}", "--output", str(tmp_path / "o"))
    _one_line_error(proc, f"cannot listen on 127.0.0.1:{port}", "already in use")
    assert "add_port" not in proc.stderr  # refused before gRPC tried (and logged) the bind


def test_unwritable_output_fails_before_listening(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    port = free_port()
    proc = _run(*BASE, "--address", f"127.0.0.1:{port}", "--output", str(blocker / "out"))
    _one_line_error(proc, "--output", "cannot create the output directory")


def test_tls_files_that_are_not_pem(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("hello\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    args = ("serve", "--clients", "3", "--dim", "8", "--output", str(tmp_path / "out"))
    proc = _run(*args, "--tls-cert", str(cert), "--tls-key", str(key))
    _one_line_error(proc, f"TLS certificate {cert} is not a PEM certificate chain")


def test_dim_is_required_and_bounded(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    missing = _run("serve", "--clients", "3", "--insecure", "--output", out)
    _one_line_error(missing, "Missing option '--dim' (or '--query' or '--spec', which fix it)")
    huge = _run(*BASE, "--dim", str(2**30), "--output", out)
    _one_line_error(huge, f"--dim {2**30} exceeds --max-dim", "raise --max-dim")


def test_unsafe_threshold_names_the_cli_flag(tmp_path: Path) -> None:
    serve = _run(*BASE, "--degree", "2", "--threshold", "1", "--output", str(tmp_path / "o"))
    _one_line_error(serve, "unsafe", "--allow-unsafe")
    assert "allow_unsafe=True" not in serve.stderr
    simulate = _run("simulate", "--clients", "10", "--dim", "4", "--degree", "9",
                    "--threshold", "2")  # fmt: skip
    _one_line_error(simulate, "unsafe", "--allow-unsafe")
    assert "allow_unsafe=True" not in simulate.stderr
