"""Listening addresses: one validated parser, so that no text reaches gRPC unchecked.

gRPC takes ``localhost`` to mean port 443, wraps port 99999 to 34463 and answers ``:7462`` or
``256.1.1.1`` with a bind traceback. :func:`parse_address` accepts ``HOST``, ``HOST:PORT`` and
``[IPV6]:PORT`` (a missing port is :data:`DEFAULT_PORT`) and refuses everything else with a
:class:`~secagg.errors.ConfigError` that names the problem.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from dataclasses import dataclass

from secagg.errors import ConfigError

__all__ = ["DEFAULT_PORT", "Address", "bind_problem", "parse_address"]

DEFAULT_PORT = 7443
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Address:
    """A validated host (IP literal or DNS name) and port 0..65535 (0: any free port)."""

    host: str
    port: int

    @property
    def target(self) -> str:
        """``host:port`` as gRPC wants it (IPv6 literals in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def with_port(self, port: int) -> Address:
        """The same host with another port (e.g. the one bound for port 0)."""
        return Address(self.host, port)

    def __str__(self) -> str:
        return self.target


def parse_address(text: str, *, default_port: int = DEFAULT_PORT) -> Address:
    """``HOST[:PORT]`` or ``[IPV6][:PORT]`` as an :class:`Address`; ConfigError otherwise."""
    raw = text.strip()
    if not raw:
        raise ConfigError("address is empty; expected HOST or HOST:PORT, e.g. 127.0.0.1:7443")
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"address {text!r}: expected [IPV6]:PORT, e.g. [::1]:7443")
        port_text = rest[1:] if rest else None
        _check_ip(host, text, version=6)
    elif raw.count(":") > 1:
        raise ConfigError(f"address {text!r}: write an IPv6 host in brackets, e.g. [::1]:7443")
    else:
        host, sep, port_after = raw.partition(":")
        port_text = port_after if sep else None
        if not host:
            raise ConfigError(
                f"address {text!r} has no host: use 0.0.0.0{raw} for every interface "
                f"or 127.0.0.1{raw} for this machine only"
            )
        _check_host(host, text)
    port = default_port if port_text is None else _port(port_text, text)
    return Address(host, port)


def _port(value: str, text: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ConfigError(f"address {text!r}: port {value!r} is not a number in 0..65535")
    port = int(value)
    if port > 65535:
        raise ConfigError(f"address {text!r}: port {port} is out of range 0..65535")
    return port


def _check_ip(host: str, text: str, *, version: int) -> None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"address {text!r}: {host!r} is not a valid IP address") from None
    if ip.version != version:
        raise ConfigError(f"address {text!r}: {host!r} is not an IPv{version} address")


def _check_host(host: str, text: str) -> None:
    if re.fullmatch(r"[0-9.]+", host):
        _check_ip(host, text, version=4)  # all digits and dots: must be a valid IPv4 address
        return
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ConfigError(f"address {text!r}: {host!r} is neither an IP address nor a host name")


def bind_problem(address: Address) -> str | None:
    """Why ``address`` cannot be bound, in words; None if a socket can bind it now.

    Probes like gRPC binds (SO_REUSEADDR; it is enough that one resolved address binds), so
    the server can refuse in one line before gRPC logs its own error.
    """
    if address.port == 0:
        return None
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except OSError:
        return f"host {address.host!r} does not resolve"
    problems: list[str] = []
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
                probe.listen()
            except OSError as exc:
                problems.append(_bind_error(address, exc))
            else:
                return None
    return problems[0] if problems else f"host {address.host!r} has no address"


def _bind_error(address: Address, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {address.port} is already in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{address.host} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {address.port}"
    return exc.strerror or type(exc).__name__
