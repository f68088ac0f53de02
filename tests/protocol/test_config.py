"""RoundConfig validation, canonical encoding and session ids."""

from __future__ import annotations

import dataclasses

import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import ConfigError
from secagg.protocol.config import RoundConfig


def _config(**changes: object) -> RoundConfig:
    base = RoundConfig.create(10, 100, 32, degree=9, rng=DeterministicRandom(1))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_create_defaults_and_round_trip() -> None:
    cfg = RoundConfig.create(10, 100, 32, degree=9, rng=DeterministicRandom(1))
    assert cfg.threshold == 6  # smallest t > (k + 1) / 2
    assert cfg.is_complete_graph
    assert RoundConfig.decode(cfg.encode()) == cfg
    assert len(cfg.session_id) == 32


def test_fresh_round_ids() -> None:
    a = RoundConfig.create(10, 100, 32, degree=9)
    b = RoundConfig.create(10, 100, 32, degree=9)
    assert a.round_id != b.round_id
    assert a.session_id != b.session_id


@pytest.mark.parametrize(
    "field",
    ["num_clients", "threshold", "dim", "bits", "mode", "round_id", "graph_seed", "context_digest"],
)
def test_every_field_changes_the_session_id(field: str) -> None:
    cfg = _config()
    changed = {
        "num_clients": 11,
        "threshold": 7,
        "dim": 101,
        "bits": 31,
        "mode": "malicious",
        "round_id": bytes(16),
        "graph_seed": bytes(32),
        "context_digest": b"\x01" * 32,
    }[field]
    extra: dict[str, object] = {
        "mode": {"threshold": 8, "graph_seed": bytes(32)},
        "num_clients": {"degree": 10},
    }.get(field, {})
    other = dataclasses.replace(cfg, **{field: changed, **extra})  # type: ignore[arg-type]
    assert other.session_id != cfg.session_id


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_clients": 1}, "num_clients must be an integer in 2.."),
        ({"dim": 0}, "dim must be an integer in 1.."),
        ({"bits": 65}, "bit width must be an integer in 1..64"),
        ({"bits": 0}, "bit width must be an integer in 1..64"),
        ({"mode": "paranoid"}, "mode must be one of"),
        ({"threshold": 11}, "threshold must be an integer in 1..10"),
        ({"degree": 10}, "degree must be an integer in 1..9"),
        ({"round_id": b"short"}, "round_id must be 16 bytes, got 5 bytes"),
        ({"graph_seed": "text"}, "graph_seed must be 32 bytes, got str"),
        ({"version": 2}, "protocol version 2 is not supported"),
    ],
)
def test_invalid_values_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _config(**changes)


def test_unsafe_threshold_needs_override() -> None:
    with pytest.raises(ConfigError):
        _config(threshold=3)
    assert _config(threshold=3, allow_unsafe=True).threshold == 3


def test_malicious_threshold_rule() -> None:
    # k = 9: malicious needs t > 2 * 10 / 3, i.e. t >= 7.
    with pytest.raises(ConfigError):
        _config(mode="malicious", threshold=6, graph_seed=bytes(32))
    assert _config(mode="malicious", threshold=7, graph_seed=bytes(32)).threshold == 7


def test_a_malicious_config_carries_no_server_chosen_graph_seed() -> None:
    """The clients derive the malicious-mode graph seed by commit-reveal (PROTOCOL.md, "Graph
    seed"): a config naming a seed is refused, so a server has no seed to grind."""
    with pytest.raises(ConfigError, match="all-zero graph_seed"):
        _config(mode="malicious", threshold=7)
    created = RoundConfig.create(10, 100, 32, degree=9, mode="malicious")
    assert created.graph_seed == bytes(32)
    data = bytearray(created.encode())
    data[-96] ^= 1  # the graph seed's first byte (then context digest and spec digest, 32 each)
    with pytest.raises(ConfigError, match="all-zero graph_seed"):
        RoundConfig.decode(bytes(data))


def test_decode_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="bytes"):
        RoundConfig.decode(b"nonsense")
    data = bytearray(_config().encode())
    data[0] ^= 0xFF
    with pytest.raises(ConfigError, match="not a secagg round config"):
        RoundConfig.decode(bytes(data))
