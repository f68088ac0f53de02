"""The signed Hello: what it covers and what the server accepts."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import secagg
from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigError
from secagg.transport import secagg_pb2 as pb
from secagg.transport.hello import (
    CHALLENGE_BYTES,
    hello_frame,
    hello_message,
    new_challenge,
    verify_hello,
)
from tests.transport.helpers import free_port

KEY = SigningKey.generate(DeterministicRandom("hello-key"))
OTHER = SigningKey.generate(DeterministicRandom("other-key"))


def _hello(nonce: bytes, name: str = "alice", dim: int = 10, key: SigningKey = KEY) -> pb.Hello:
    return hello_frame(1, name, dim, nonce, key).hello


def test_a_signed_hello_verifies_only_for_its_challenge_key_name_and_dim() -> None:
    nonce = new_challenge()
    assert len(nonce) == CHALLENGE_BYTES
    hello = _hello(nonce)
    assert verify_hello(KEY.public_bytes, nonce, hello)
    assert not verify_hello(OTHER.public_bytes, nonce, hello)
    assert not verify_hello(KEY.public_bytes, new_challenge(), hello)  # replayed on a new stream
    renamed = pb.Hello(protocol_version=1, name="bob", dim=10, signature=hello.signature)
    assert not verify_hello(KEY.public_bytes, nonce, renamed)
    resized = pb.Hello(protocol_version=1, name="alice", dim=11, signature=hello.signature)
    assert not verify_hello(KEY.public_bytes, nonce, resized)
    unsigned = hello_frame(1, "alice", 10, nonce, None).hello
    assert unsigned.signature == b""
    assert not verify_hello(KEY.public_bytes, nonce, unsigned)
    assert not verify_hello(KEY.public_bytes, nonce[:16], _hello(nonce[:16]))


@given(
    st.text(min_size=1, max_size=20),
    st.integers(0, 2**64 - 1),
    st.text(min_size=1, max_size=20),
    st.integers(0, 2**64 - 1),
)
def test_distinct_name_dim_pairs_sign_distinct_messages(
    name_a: str, dim_a: int, name_b: str, dim_b: int
) -> None:
    nonce = bytes(CHALLENGE_BYTES)
    if (name_a, dim_a) != (name_b, dim_b):
        assert hello_message(nonce, name_a, dim_a) != hello_message(nonce, name_b, dim_b)


def test_client_checks_its_vector_before_connecting() -> None:
    server = f"127.0.0.1:{free_port()}"  # nobody listens: a connection would be unreachable
    client = secagg.Client(server, insecure=True, bits=8, dim=3)
    outcome = asyncio.run(client.submit(np.array([1, 256, 3], dtype=np.uint32)))
    assert (outcome.reason, outcome.bytes_sent) == ("invalid-input", 0)
    assert "256 at position 1" in outcome.detail
    outcome = asyncio.run(client.submit(np.array([1, 2], dtype=np.uint32)))
    assert outcome.reason == "wrong-length"
    outcome = asyncio.run(
        secagg.Client(server, insecure=True).submit(np.array([3, -1], dtype=np.int64))
    )
    assert outcome.reason == "invalid-input"
    outcome = asyncio.run(secagg.Client(server, insecure=True).submit(np.arange(3)))
    assert outcome.reason == "server-unreachable"


def test_client_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="expected_context_digest"):
        secagg.Client("h:1", insecure=True, expected_context_digest=b"short")
    with pytest.raises(ConfigError, match="identity and registry"):
        secagg.Client("h:1", insecure=True, identity=KEY)
    with pytest.raises(ConfigError, match="wait"):
        secagg.Client("h:1", insecure=True, wait=-1)
