"""The command-line contract of `secagg serve` / `secagg client`, with TLS from a fresh CA."""

from __future__ import annotations

import datetime
import ipaddress
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from secagg.cli.main import cli
from tests.transport.helpers import (
    SECAGG,
    Procs,
    cleanup,
    free_port,
    plain_sum,
    random_vectors,
    wait_all,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        cleanup(p)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_ca(tmp: Path, label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"secagg test CA {label}"))
        .issuer_name(_name(f"secagg test CA {label}"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp / f"ca-{label}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _server_cert(
    tmp: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_report_contract(procs: Procs) -> None:
    port = free_port()
    names = ["zed", "alice", "bob", "carol"]
    vectors = random_vectors(names, 64, 12, seed=7)
    server = procs.serve(port, "--clients", "4", "--dim", "64", "--bits", "12", "--insecure")
    clients = [procs.client(port, n, vectors[n], "--insecure", "--json") for n in names]
    assert wait_all(clients) == [0] * 4
    assert wait_all([server]) == [0]
    report = procs.report()
    assert report["included"] == sorted(names)
    assert report["dropped"] == {}
    assert report["bits"] == 12
    assert report["dim"] == 64
    assert set(report["timings"]) >= {"join", "advertise-keys", "share-keys", "unmasking"}
    assert report["rounds"][0]["bytes"]["masked-input"]["received"] > 4 * 64 * 4
    total = procs.total()
    assert np.array_equal(total.astype(np.uint64), plain_sum(vectors, names, 12))
    assert '"included": true' in procs.log("alice")
    # The server says what its default parameters cost: at n = 4 privacy to 2^-40 under 5%
    # independent corruption needs t = 3 of 4, which a second dropout breaks (1.4% of rounds).
    first = report["rounds"][0]
    assert (first["degree"], first["threshold"]) == (3, 3)
    assert first["meets_correctness_target"] is False
    assert first["abort_probability"] == pytest.approx(1 - 0.95**4 - 4 * 0.05 * 0.95**3)
    assert first["privacy_failure_log2"] is None  # impossible under the model
    assert "parameters k=3, t=3 (complete graph)" in procs.log("server")
    assert "abort probability <= 1.4%" in procs.log("server")
    _check_readme_fields(report)


def _backticked(text: str) -> set[str]:
    """Field names in a README passage: backticked words outside parentheses (values)."""
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    return set(re.findall(r"`([a-z_][a-z0-9_]*)`", text))


def _check_readme_fields(report: dict[str, object]) -> None:
    """The README's list of report.json fields is the real report's, both ways."""
    readme = README.read_text()
    start = readme.index("- `report.json` fields:")
    split = readme.index("and `rounds`:", start)
    end = readme.index("The console", split)
    top = _backticked(readme[start + len("- `report.json` fields:") : split])
    assert top | {"rounds"} == set(report)
    per_round = _backticked(readme[split + len("and `rounds`:") : end])
    rounds = report["rounds"]
    assert isinstance(rounds, list)
    assert per_round <= set(rounds[0])
    assert set(rounds[0]) <= top | per_round


def test_tls_with_a_self_signed_ca(procs: Procs, tmp_path: Path) -> None:
    ca_key, ca, ca_path = _make_ca(tmp_path, "good")
    _other_key, _other, other_path = _make_ca(tmp_path, "other")
    cert, key = _server_cert(tmp_path, ca_key, ca)
    port = free_port()
    names = ["a", "b", "c"]
    vectors = random_vectors([*names, "mallory"], 32, 16, seed=8)
    server = procs.serve(
        port, "--clients", "3", "--dim", "32", "--bits", "16", "--tls-cert", str(cert),
        "--tls-key", str(key),
    )  # fmt: skip
    # A client trusting another CA refuses the server and is never registered.
    stranger = procs.client(port, "mallory", vectors["mallory"], "--ca-cert", str(other_path),
                            "--timeout", "5")  # fmt: skip
    assert wait_all([stranger]) == [1]
    assert "transport-error" in procs.log("mallory")
    assert "does not verify against the trusted CA" in procs.log("mallory")
    # gRPC's own log lines (ssl_transport_security.cc ...) stay out of the client's output.
    assert ".cc:" not in procs.log("mallory")
    # A plaintext client cannot talk to a TLS server either, and is told why.
    plain = procs.client(port, "plain", vectors["mallory"], "--insecure", "--timeout", "5")
    assert wait_all([plain]) == [1]
    assert "tls-mismatch" in procs.log("plain")
    assert "probably speaks TLS" in procs.log("plain")
    assert "Socket closed" not in procs.log("plain")
    clients = [procs.client(port, n, vectors[n], "--ca-cert", str(ca_path)) for n in names]
    assert wait_all(clients) == [0] * 3
    assert wait_all([server]) == [0]
    assert procs.report()["included"] == names
    assert np.array_equal(procs.total().astype(np.uint64), plain_sum(vectors, names, 16))


def test_server_exits_nonzero_when_too_few_join(procs: Procs) -> None:
    port = free_port()
    vectors = random_vectors(["only"], 16, 8, seed=9)
    server = procs.serve(
        port, "--clients", "3", "--dim", "16", "--bits", "8", "--insecure", "--join-timeout", "10"
    )
    lone = procs.client(port, "only", vectors["only"], "--insecure")
    assert wait_all([server]) == [1]
    assert "too-few-clients" in procs.log("server")
    report = procs.report()
    assert report["status"] == "aborted"
    assert report["abort_reason"] == "too-few-clients"
    assert wait_all([lone]) == [1]
    # The client is told the real reason, with the counts (not "the server is shutting down").
    assert "(too-few-clients): 1 clients joined; 3 needed" in procs.log("only")


def test_serve_requires_tls_or_insecure(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--clients", "3", "--dim", "4", "--output", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "--insecure" in result.output


def test_client_rejects_a_float_input(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones(4))
    result = CliRunner().invoke(
        cli, ["client", "--server", "127.0.0.1:1", "--input", str(path), "--insecure"]
    )
    assert result.exit_code == 2
    assert "integer" in result.output


def test_client_reports_an_unreachable_server(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(4, dtype=np.uint32))
    port = free_port()
    proc = subprocess.run(
        [*SECAGG, "client", "--server", f"127.0.0.1:{port}", "--input", str(path),
         "--insecure", "--timeout", "3"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "not included" in proc.stderr


def test_a_tls_client_against_a_plaintext_server_is_told_so(procs: Procs, tmp_path: Path) -> None:
    _ca_key, _ca, ca_path = _make_ca(tmp_path, "any")
    port = free_port()
    # The server outlives the client whatever the machine's load (it is killed below): a
    # client process slow to start must still find it listening.
    server = procs.serve(
        port, "--clients", "2", "--dim", "4", "--insecure", "--join-timeout", "600"
    )
    vector = np.arange(4, dtype=np.uint32)
    client = procs.client(port, "tls", vector, "--ca-cert", str(ca_path), "--timeout", "5")
    assert wait_all([client]) == [1]
    assert "tls-mismatch" in procs.log("tls")
    assert "does not speak TLS" in procs.log("tls")
    assert ".cc:" not in procs.log("tls")
    server.kill()


def test_two_rounds_write_two_sums(procs: Procs) -> None:
    port = free_port()
    first = random_vectors(["a", "b", "c"], 16, 32, seed=10)
    second = random_vectors(["d", "e", "f"], 16, 32, seed=11)
    server = procs.serve(
        port, "--clients", "3", "--dim", "16", "--bits", "32", "--insecure", "--rounds", "2"
    )
    assert wait_all([procs.client(port, n, v, "--insecure") for n, v in first.items()]) == [0] * 3
    assert wait_all([procs.client(port, n, v, "--insecure") for n, v in second.items()]) == [0] * 3
    assert wait_all([server]) == [0]
    report = procs.report()
    assert [r["included"] for r in report["rounds"]] == [["a", "b", "c"], ["d", "e", "f"]]
    out = procs.tmp / "server-out"
    assert np.array_equal(
        np.load(out / "sum-round-1.npy").astype(np.uint64), plain_sum(first, list(first), 32)
    )
    assert np.array_equal(procs.total().astype(np.uint64), plain_sum(second, list(second), 32))
