"""Listening addresses: one parser, a documented default port, errors that name the problem."""

from __future__ import annotations

import pytest

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
