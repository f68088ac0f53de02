"""Shard assignment (uniform, capacity-bound, sticky per name) and the master's combination."""

from __future__ import annotations

import json
from collections import Counter

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import ConfigError, TransportError
from secagg.sharding import ShardAssigner, ShardOutcome, balanced_capacities, combine
from secagg.sharding.assign import ShardsFullError
from secagg.sharding.coordinator import Coordinator, _parse_reply
from secagg.sharding.master import ShardStatus


@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_every_slot_is_filled_once_and_names_stick(capacities: list[int], seed: int) -> None:
    assigner = ShardAssigner(capacities, DeterministicRandom(seed))
    names = [f"client-{i}" for i in range(sum(capacities))]
    shards = [assigner.assign(name) for name in names]
    assert Counter(shards) == Counter(dict(enumerate(capacities)))
    assert [assigner.assign(name) for name in names] == shards  # asking again: same shard
    with pytest.raises(ShardsFullError):
        assigner.assign("one-too-many")


def test_the_first_client_lands_uniformly_over_equal_shards() -> None:
    """Not server-chosen: over many fresh rounds, client 0's shard is uniform (chi-square)."""
    rng = DeterministicRandom(b"uniformity")
    counts = Counter(ShardAssigner([5, 5, 5, 5], rng).assign("first") for _ in range(4000))
    chi2 = sum((counts[i] - 1000) ** 2 / 1000 for i in range(4))
    assert chi2 < 16.3  # p = 0.001 for 3 degrees of freedom


def test_balanced_capacities() -> None:
    assert balanced_capacities(10, 4) == [3, 3, 2, 2]
    with pytest.raises(ConfigError, match="cannot fill 4 shards"):
        balanced_capacities(7, 4)


def test_bad_names_are_refused() -> None:
    assigner = ShardAssigner([2])
    for name in ("", "x" * 300):
        with pytest.raises(ConfigError, match="client name"):
            assigner.assign(name)


def _outcome(shard: int, status: ShardStatus, members: int, total: list[int] | None):
    vector = None if total is None else np.array(total, dtype=np.uint32)
    return ShardOutcome(
        shard, status=status, included=[f"s{shard}-{i}" for i in range(members)], total=vector
    )


def test_combine_adds_only_released_shards_of_the_minimum_size() -> None:
    outcomes = [
        _outcome(0, ShardStatus.RELEASED, 5, [1, 2]),
        _outcome(1, ShardStatus.RELEASED, 4, [100, 200]),  # below the minimum of 5
        _outcome(2, ShardStatus.FAILED, 0, None),
        _outcome(3, ShardStatus.RELEASED, 6, [(1 << 20) - 1, 3]),
        _outcome(4, ShardStatus.ABORTED, 5, None),
    ]
    result = combine(outcomes, bits=20, min_shard_size=5)
    assert result.total is not None
    np.testing.assert_array_equal(result.total, [0, 5])  # mod 2^20
    assert result.released == [0, 3]
    assert [s.status for s in result.shards] == [
        ShardStatus.RELEASED,
        ShardStatus.DISCARDED,
        ShardStatus.FAILED,
        ShardStatus.RELEASED,
        ShardStatus.ABORTED,
    ]
    assert all(s.total is None for s in result.shards)  # no shard sum stays with the master
    assert "4 included clients; the minimum is 5" in result.shards[1].detail
    assert len(result.included) == 11
    report = json.dumps(result.to_json())
    assert "200" not in report  # the discarded shard's sum is not in the report


def test_combine_without_a_released_shard_has_no_total() -> None:
    result = combine([_outcome(0, ShardStatus.RELEASED, 1, [7])], bits=32, min_shard_size=2)
    assert result.total is None
    assert result.to_json()["status"] == "aborted"


@pytest.mark.adversarial
@pytest.mark.parametrize(
    "request_body",
    [b"", b"not json", b"[]", b'{"name": 5}', b'{"nom": "x"}', b'{"name": ""}', b"x" * 5000],
)
def test_coordinator_refuses_malformed_requests(request_body: bytes) -> None:
    coordinator = Coordinator(ShardAssigner([2, 2]), ["127.0.0.1:1", "127.0.0.1:2"])
    status, detail = coordinator.answer(request_body)
    assert status is grpc.StatusCode.INVALID_ARGUMENT
    assert detail
    assert coordinator.answer(b'{"name": "ok"}')[0] is grpc.StatusCode.OK


def test_coordinator_answers_the_shard_address() -> None:
    coordinator = Coordinator(ShardAssigner([1]), ["10.0.0.7:5000"])
    status, body = coordinator.answer(json.dumps({"name": "a"}).encode())
    assert status is grpc.StatusCode.OK
    assert _parse_reply(body) == (0, "10.0.0.7:5000")
    assert coordinator.answer(b'{"name": "b"}')[0] is grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.adversarial
@pytest.mark.parametrize(
    "reply", [b"", b"{}", b'{"shard": true, "address": "h:1"}', b'{"shard": 0, "address": "h"}']
)
def test_a_client_refuses_a_malformed_assignment(reply: bytes) -> None:
    with pytest.raises(TransportError, match=r"assignment|HOST:PORT"):
        _parse_reply(reply)
