"""Server TLS material, checked before anything starts.

gRPC accepts any bytes as a certificate or key and fails only at the first handshake; here a
file that is not a PEM certificate chain, not an unencrypted PEM private key, or a key that
does not belong to the certificate is a :class:`~secagg.errors.ConfigError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from secagg.errors import ConfigError

__all__ = ["server_credentials"]

_PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def server_credentials(cert_path: Path, key_path: Path) -> grpc.ServerCredentials:
    """gRPC server credentials from a PEM certificate chain and its PEM private key."""
    chain = _read(cert_path, "TLS certificate")
    key_pem = _read(key_path, "TLS key")
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise ConfigError(
            f"TLS certificate {cert_path} is not a PEM certificate chain "
            "(expected -----BEGIN CERTIFICATE-----)"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(
            f"TLS key {key_path} is encrypted; give the server an unencrypted PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"TLS key {key_path} is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)"
        ) from None
    if certs[0].public_key().public_bytes(*_PUBLIC) != key.public_key().public_bytes(*_PUBLIC):
        raise ConfigError(
            f"TLS key {key_path} does not belong to the first certificate in {cert_path}"
        )
    return grpc.ssl_server_credentials([(key_pem, chain)])
