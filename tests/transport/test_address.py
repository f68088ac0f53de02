"""Listening addresses: one parser, a documented default port, errors that name the problem."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigError
from secagg.transport.address import DEFAULT_PORT, Address, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7462", Address("127.0.0.1", 7462)),
        ("localhost", Address("localhost", DEFAULT_PORT)),  # gRPC alone would take port 443
        ("agg.example.org:0", Address("agg.example.org", 0)),
        ("0.0.0.0", Address("0.0.0.0", DEFAULT_PORT)),
        ("[::1]:9000", Address("::1", 9000)),
        ("[::]", Address("::", DEFAULT_PORT)),
        (" 10.0.0.1:65535 ", Address("10.0.0.1", 65535)),
    ],
)
def test_valid_addresses(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


def test_target_brackets_ipv6() -> None:
    assert parse_address("[::1]:80").target == "[::1]:80"
    assert parse_address("localhost").target == f"localhost:{DEFAULT_PORT}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (":7462", "has no host"),
        ("256.1.1.1", "not a valid IP address"),
        ("127.0.0.1:99999", "out of range 0..65535"),
        ("127.0.0.1:http", "not a number"),
        ("127.0.0.1:-1", "not a number"),
        ("::1", "IPv6 host in brackets"),
        ("[::1", "expected [IPV6]:PORT"),
        ("[1.2.3.4]:80", "not an IPv6 address"),
        ("bad_host!:80", "neither an IP address nor a host name"),
        ("", "empty"),
    ],
)
def test_invalid_addresses_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace(".", r"\.")):
        parse_address(text)


@given(
    ip=st.ip_addresses(),
    port=st.integers(0, 65535),
)
def test_every_ip_and_port_round_trips(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    text = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    parsed = parse_address(text)
    assert parsed == Address(str(ip), port)
    assert parse_address(parsed.target) == parsed


@given(port=st.integers(65536, 10**12))
def test_ports_beyond_65535_never_wrap(port: int) -> None:
    with pytest.raises(ConfigError, match="out of range"):
        parse_address(f"127.0.0.1:{port}")
