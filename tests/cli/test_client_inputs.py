"""`secagg client` checks what it was handed before it connects: one line naming the problem.

The server address is a port nobody listens on: had the client tried to connect, it would have
failed with server-unreachable instead of the usage error asserted here.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.transport.helpers import SECAGG, free_port


def _client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SECAGG, "client", "--server", f"127.0.0.1:{free_port()}", "--insecure", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _one_line_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "server-unreachable" not in proc.stderr  # nothing connected
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(error) == 1, proc.stderr
    for needle in needles:
        assert needle in error[0], error[0]


def _huge_header(path: Path) -> None:
    """A .npy whose header claims 2^40 uint32 values, followed by 16 bytes."""
    header = {"descr": "<u4", "fortran_order": False, "shape": (2**40,)}
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(bytes(16))


def test_a_npz_archive_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, a=np.arange(4, dtype=np.uint32))
    assert zipfile.is_zipfile(path)
    _one_line_usage_error(_client("--input", str(path)), "--input", ".npz archive")


def test_a_header_claiming_2_40_values_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    _huge_header(path)
    _one_line_usage_error(_client("--input", str(path)), "claims 1099511627776 values")


def test_a_truncated_npy_is_named(tmp_path: Path) -> None:
    path = tmp_path / "short.npy"
    header = {"descr": "<u4", "fortran_order": False, "shape": (1000,)}
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(bytes(400))
    _one_line_usage_error(_client("--input", str(path)), "holds only 400 bytes")


@pytest.mark.parametrize("content", [b"1 2 3 4\n", b"", b"\x80\x04\x95pickle"])
def test_a_text_or_pickle_file_is_not_a_npy(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    proc = _client("--input", str(path))
    _one_line_usage_error(proc, "is not a .npy file")
    assert "allow_pickle" not in proc.stderr


def test_a_2d_or_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npy"
    np.save(path, np.zeros((2, 2), dtype=np.uint32))
    _one_line_usage_error(_client("--input", str(path)), "1-D vector")


def test_a_non_pem_ca_cert_is_refused_up_front(tmp_path: Path) -> None:
    vec = tmp_path / "x.npy"
    np.save(vec, np.arange(4, dtype=np.uint32))
    ca = tmp_path / "ca.pem"
    ca.write_text("this is not a certificate\n")
    proc = subprocess.run(
        [*SECAGG, "client", "--server", f"127.0.0.1:{free_port()}", "--input", str(vec),
         "--ca-cert", str(ca)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    _one_line_usage_error(proc, "--ca-cert", "no PEM certificate")


def test_out_of_range_values_are_caught_before_joining(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.array([1, 2, 300, 4], dtype=np.uint32))
    _one_line_usage_error(
        _client("--input", str(path), "--bits", "8"), "value 300 at position 2", "2^8"
    )
    np.save(path, np.array([1, -5, 3], dtype=np.int64))
    _one_line_usage_error(_client("--input", str(path)), "value -5 at position 1 is negative")


def test_a_wrong_length_is_caught_before_joining(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(5, dtype=np.uint32))
    _one_line_usage_error(_client("--input", str(path), "--dim", "6"), "5 values, not D=6")
