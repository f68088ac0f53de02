"""The identity registry file format, identity key files and the context digest."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import secagg
from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigError
from secagg.identity.registry import (
    IdentityRegistryFile,
    RegistryEntry,
    load_identity,
    load_public_key,
    load_registry,
    parse_public_key,
    save_identity,
    save_registry,
)
from secagg.protocol.identity import IdentityRegistry, MappingRegistry
from secagg.protocol.policy import ClientPolicy


def _key(label: str) -> SigningKey:
    return SigningKey.generate(DeterministicRandom(label))


def test_registry_round_trips_through_the_documented_json(tmp_path: Path) -> None:
    a, b, c = _key("a"), _key("b"), _key("c")
    reg = IdentityRegistryFile(
        [
            RegistryEntry(b.public_bytes, index=2, name="bob"),
            RegistryEntry(a.public_bytes, index=1),
            RegistryEntry(c.public_bytes, name="carol"),
        ]
    )
    path = tmp_path / "registry.json"
    save_registry(reg, path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "secagg-identity-registry"
    assert doc["version"] == 1
    assert doc["clients"] == [
        {"index": 1, "public_key": a.public_bytes.hex()},
        {"index": 2, "name": "bob", "public_key": b.public_bytes.hex()},
        {"name": "carol", "public_key": c.public_bytes.hex()},
    ]
    loaded = load_registry(path)
    assert len(loaded) == 3
    assert loaded.identity_key(1) == a.public_bytes
    assert loaded.identity_key(2) == b.public_bytes
    assert loaded.identity_key(3) is None
    assert loaded.by_name("carol") is not None
    assert 1 in loaded
    assert 3 not in loaded
    assigned = loaded.with_indices({"carol": 3})
    assert assigned.identity_key(3) == c.public_bytes
    registry: IdentityRegistry = loaded  # satisfies the protocol's registry interface
    assert registry.identity_key(2) == b.public_bytes


def test_registry_accepts_base64_keys() -> None:
    key = _key("a").public_bytes
    doc = {
        "format": "secagg-identity-registry",
        "version": 1,
        "clients": [{"index": 7, "public_key": base64.b64encode(key).decode()}],
    }
    assert IdentityRegistryFile.from_json(doc).identity_key(7) == key


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=2), "unsupported version"),
        (lambda d: d.update(format="other"), "'format'"),
        (lambda d: d.update(extra=1), "unknown fields"),
        (lambda d: d.update(clients={}), "must be a list"),
        (lambda d: d["clients"].append("x"), "must be an object"),
        (lambda d: d["clients"][0].pop("public_key"), "missing 'public_key'"),
        (lambda d: d["clients"][0].update(public_key="zz"), "32-byte Ed25519"),
        (lambda d: d["clients"][0].update(index=0), "index must be"),
        (lambda d: d["clients"][0].update(index=True), "index must be"),
        (lambda d: d["clients"][0].pop("index"), "needs an index or a name"),
        (lambda d: d["clients"][0].update(nme="typo"), "unknown fields"),
        (lambda d: d["clients"][1].update(index=1), "index 1 is already registered"),
        (
            lambda d: d["clients"][1].update(public_key=d["clients"][0]["public_key"]),
            "already registered",
        ),
    ],
)
def test_registry_validation_raises_config_error(
    mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    doc = {
        "format": "secagg-identity-registry",
        "version": 1,
        "clients": [
            {"index": 1, "public_key": _key("a").public_bytes.hex()},
            {"index": 2, "name": "b", "public_key": _key("b").public_bytes.hex()},
        ],
    }
    mutate(doc)
    with pytest.raises(ConfigError, match=message):
        IdentityRegistryFile.from_json(doc)


def test_one_key_cannot_be_registered_twice_sybil_defence() -> None:
    key = _key("a").public_bytes
    reg = IdentityRegistryFile([RegistryEntry(key, index=1)])
    with pytest.raises(ConfigError, match="cannot sign for two clients"):
        reg.add(RegistryEntry(key, index=2))
    with pytest.raises(ConfigError, match="name 'x' is already"):
        IdentityRegistryFile(
            [RegistryEntry(key, name="x"), RegistryEntry(_key("b").public_bytes, name="x")]
        )


def test_load_registry_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_registry(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_registry(bad)


def test_identity_file_is_private_and_round_trips(tmp_path: Path) -> None:
    key = _key("me")
    path = tmp_path / "me.key"
    pub = save_identity(key, path)
    assert pub == tmp_path / "me.key.pub"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_identity(path).public_bytes == key.public_bytes
    assert load_identity(path).seed() == key.seed()
    assert key.seed().hex() not in pub.read_text()
    assert load_public_key(pub) == key.public_bytes
    assert load_public_key(path) == key.public_bytes  # public half of a private file
    assert load_public_key(key.public_bytes.hex()) == key.public_bytes
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        save_identity(_key("other"), path)
    save_identity(_key("other"), path, overwrite=True)
    assert load_identity(path).public_bytes == _key("other").public_bytes


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_identity_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(_key("me"), path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        load_identity(path)
    assert _key("me").seed().hex() not in str(info.value)


def test_identity_file_corruption_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(_key("me"), path)
    doc = json.loads(path.read_text())
    doc["public_key"] = _key("other").public_bytes.hex()
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="does not match"):
        load_identity(path)
    doc["private_seed"] = "00"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="64 hex digits"):
        load_identity(path)


def test_parse_public_key_rejects_garbage() -> None:
    with pytest.raises(ConfigError):
        parse_public_key("00" * 31)
    with pytest.raises(ConfigError):
        parse_public_key(123)
    assert parse_public_key(" " + _key("a").public_bytes.hex() + "\n") == _key("a").public_bytes


def test_mapping_registry_still_works() -> None:
    reg = MappingRegistry({1: b"k" * 32})
    assert reg.identity_key(1) == b"k" * 32
    assert reg.identity_key(2) is None
    assert len(reg) == 1


# -- context digest ---------------------------------------------------------------------------


def test_context_digest_is_canonical_and_sensitive() -> None:
    model = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, np.float32)}
    d = secagg.context_digest(model)
    assert len(d) == 32
    # Key order, memory layout and byte order do not matter ...
    same = {"b": np.zeros(3, np.float32), "w": np.asfortranarray(model["w"]).astype(">f4")}
    assert secagg.context_digest(same) == d
    # ... values, shapes, dtypes and structure do.
    changed = dict(model, w=model["w"].copy())
    changed["w"][0, 0] = np.float32(1e-7)
    assert secagg.context_digest(changed) != d
    assert secagg.context_digest(dict(model, w=model["w"].reshape(3, 2))) != d
    assert secagg.context_digest(dict(model, w=model["w"].astype(np.float64))) != d
    assert secagg.context_digest([model["b"], model["w"]]) != d
    assert secagg.context_digest(b"abc") != secagg.context_digest("abc")
    assert secagg.context_digest(b"abc") == secagg.context_digest(bytearray(b"abc"))
    assert secagg.context_digest([1, 2.5, True]) == secagg.context_digest([1, 2.5, True])


def test_context_digest_rejects_what_it_cannot_encode() -> None:
    with pytest.raises(ConfigError):
        secagg.context_digest({1: b"x"})
    with pytest.raises(ConfigError):
        secagg.context_digest(None)
    with pytest.raises(ConfigError):
        secagg.context_digest(np.array([object()], dtype=object))
    with pytest.raises(ConfigError):
        secagg.context_digest(object())


def test_a_malicious_round_runs_on_identities_and_a_registry_loaded_from_files(
    tmp_path: Path,
) -> None:
    """Identity files and a registry file, as `secagg keys` writes them, drive a real round."""
    from secagg.protocol.client.session import ClientSession
    from secagg.protocol.config import RoundConfig
    from secagg.protocol.driver import run_round
    from secagg.protocol.messages import Round
    from secagg.protocol.observer import RoundObserver
    from secagg.protocol.server.session import ServerSession

    n = 6
    registry = IdentityRegistryFile()
    for i in range(1, n + 1):
        save_identity(_key(f"client-{i}"), tmp_path / f"c{i}.key")
        registry.add(RegistryEntry(load_public_key(tmp_path / f"c{i}.key.pub"), index=i))
    save_registry(registry, tmp_path / "registry.json")
    loaded = load_registry(tmp_path / "registry.json")
    model = {"w": np.linspace(0, 1, 5, dtype=np.float32)}
    rng = DeterministicRandom("round")
    config = RoundConfig.create(
        n,
        4,
        16,
        degree=n - 1,
        mode="malicious",
        context_digest=secagg.context_digest(model),
        rng=rng,
    )
    inputs = np.arange(n * 4, dtype=np.uint32).reshape(n, 4)
    clients = {
        i: ClientSession(
            config,
            i,
            inputs[i - 1],
            rng=rng.fork(f"c{i}"),
            identity=load_identity(tmp_path / f"c{i}.key"),
            registry=loaded,
            expected_context_digest=secagg.context_digest(model),
            policy=ClientPolicy(allow_weak_parameters=True),  # a tiny round, deliberately
        )
        for i in range(1, n + 1)
    }
    server = ServerSession(config, registry=loaded)

    class Steps(RoundObserver):
        def __init__(self) -> None:
            self.steps: list[Round] = []

        def round_started(self, round_: Round, recipients: int) -> None:
            self.steps.append(round_)

    observer = Steps()
    run_round(server, clients, observer=observer)
    steps = observer.steps[1:]  # after the clients' start
    # Round 0 has its nonce-reveal step, then every round including the consistency check.
    assert steps == [Round.ADVERTISE_KEYS, *list(Round)[1:]]
    result = server.result
    assert result.included == tuple(range(1, n + 1))
    np.testing.assert_array_equal(result.total, inputs.sum(axis=0) % (1 << 16))


def test_context_file_digest_equals_the_digest_of_its_bytes(tmp_path: Path) -> None:
    from secagg import context_digest
    from secagg.encoding.context import context_file_digest

    path = tmp_path / "model.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path.write_bytes(data)
    assert context_file_digest(path) == context_digest(data)
    with pytest.raises(ConfigError, match="cannot read context file"):
        context_file_digest(tmp_path / "missing.bin")
