"""The registry refuses keys and files that would let someone else's signatures count."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secagg.cli.main import cli
from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.signing import SigningKey, is_weak_public_key
from secagg.errors import ConfigError
from secagg.identity import _files as identity_files
from secagg.identity import registry as identity_registry
from secagg.identity.registry import (
    REGISTRY_FORMAT,
    IdentityRegistryFile,
    RegistryEntry,
    load_identity,
    load_registry,
    save_identity,
    save_registry,
)

P = 2**255 - 19
Y8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
NEUTRAL = (1).to_bytes(32, "little")
CONSTANT_SIGNATURE = NEUTRAL + bytes(32)  # R = neutral element, S = 0


def _encodings() -> list[bytes]:
    """Every encoding of a point of order dividing 8: both x-signs, and y >= p forms."""
    ys = [0, 1, P - 1, Y8, P - Y8, P, P + 1]
    return [(y | sign << 255).to_bytes(32, "little") for y in ys for sign in (0, 1)]


def _edwards_order_divides_8(raw: bytes) -> bool:
    """Independent check of the blocklist: decode the point and test 8 * P == O."""
    d = -121665 * pow(121666, P - 2, P) % P
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    y %= P
    u, v = (y * y - 1) % P, (d * y * y + 1) % P
    x2 = u * pow(v, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert (x * x - x2) % P == 0, "not a point"

    def add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        (x1, y1), (x2_, y2) = a, b
        t = d * x1 * x2_ * y1 * y2 % P
        return (
            (x1 * y2 + x2_ * y1) * pow(1 + t, P - 2, P) % P,
            (y1 * y2 + x1 * x2_) * pow(1 - t, P - 2, P) % P,
        )

    point = (x, y)
    for _ in range(3):
        point = add(point, point)
    return point == (0, 1)


@pytest.mark.adversarial
def test_a_constant_signature_verifies_under_the_neutral_element() -> None:
    """Why the registry refuses it: a raw verifier accepts one signature for every message."""
    raw = Ed25519PublicKey.from_public_bytes(NEUTRAL)
    for message in (b"secagg/v1/hello", b"anything", os.urandom(64)):
        raw.verify(CONSTANT_SIGNATURE, message)  # raises InvalidSignature if it did not verify


@pytest.mark.parametrize("raw", _encodings(), ids=lambda r: r.hex()[:8] + ".." + r.hex()[-2:])
def test_small_order_and_non_canonical_keys_are_refused(raw: bytes) -> None:
    assert _edwards_order_divides_8(raw)
    assert is_weak_public_key(raw)
    with pytest.raises(ConfigError, match="small-order"):
        RegistryEntry(raw, name="mallory")
    with pytest.raises(ConfigError, match="small-order"):
        identity_registry.parse_public_key(raw.hex())


def test_generated_keys_are_not_weak() -> None:
    for label in range(50):
        key = SigningKey.generate(DeterministicRandom(label)).public_bytes
        assert not is_weak_public_key(key)
        assert not _edwards_order_divides_8(key)


@pytest.mark.adversarial
def test_loading_a_registry_with_the_neutral_element_fails(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    good = SigningKey.generate(DeterministicRandom("a")).public_bytes
    doc = {
        "format": REGISTRY_FORMAT,
        "version": 1,
        "clients": [
            {"name": "alice", "public_key": good.hex()},
            {"name": "mallory", "public_key": NEUTRAL.hex()},
        ],
    }
    path.write_text(json.dumps(doc))
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"clients\[1\].*small-order"):
        load_registry(path)


@pytest.mark.adversarial
def test_keys_registry_add_refuses_the_neutral_element(tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    result = CliRunner().invoke(
        cli,
        ["keys", "registry", "add", "-r", str(registry), "-i", NEUTRAL.hex(), "--name", "m"],
    )
    assert result.exit_code != 0
    assert "small-order" in str(result.exception) + result.output
    assert not registry.exists()


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646, 0o620])
def test_a_group_or_world_writable_registry_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "registry.json"
    save_registry(
        IdentityRegistryFile([RegistryEntry(SigningKey.generate().public_bytes, name="a")]), path
    )
    assert len(load_registry(path)) == 1  # as written: 0644
    path.chmod(mode)
    with pytest.raises(ConfigError, match="writable by group or others"):
        load_registry(path)


@pytest.mark.adversarial
def test_writing_an_identity_does_not_follow_a_symlink_at_its_temporary_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who can predict the temporary path plants a link to a file it can read."""
    stolen = tmp_path / "attacker-readable"
    stolen.write_text("")
    planted = tmp_path / ".alice.key.tmp-planted"
    planted.symlink_to(stolen)
    monkeypatch.setattr(identity_files, "_temp_path", lambda _path: planted)
    key = SigningKey.generate()
    with pytest.raises(ConfigError, match="already exists"):
        save_identity(key, tmp_path / "alice.key")
    assert stolen.read_text() == ""
    assert key.seed().hex() not in stolen.read_text()
    assert not (tmp_path / "alice.key").exists()


def test_temporary_paths_are_unpredictable_and_keys_still_save(tmp_path: Path) -> None:
    target = tmp_path / "alice.key"
    assert identity_files._temp_path(target) != identity_files._temp_path(target)
    # A link planted at the old fixed name (.NAME.tmp-PID) is never touched.
    stolen = tmp_path / "stolen"
    stolen.write_text("")
    (tmp_path / f".alice.key.tmp-{os.getpid()}").symlink_to(stolen)
    key = SigningKey.generate()
    save_identity(key, target)
    assert load_identity(target).public_bytes == key.public_bytes
    assert stolen.read_text() == ""
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
