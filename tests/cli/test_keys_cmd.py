"""`secagg keys`: identities and the registry, through click's runner."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from secagg.cli.main import cli
from secagg.errors import ConfigError
from secagg.identity.registry import load_identity, load_registry


def _generate(runner: CliRunner, path: Path) -> str:
    result = runner.invoke(cli, ["keys", "generate", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return load_identity(path).public_bytes.hex()


def test_generate_writes_a_private_file_and_never_prints_it(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "alice.key"
    result = runner.invoke(cli, ["keys", "generate", "--out", str(path)])
    assert result.exit_code == 0, result.output
    key = load_identity(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.public_bytes.hex() in result.output
    assert key.seed().hex() not in result.output
    assert (tmp_path / "alice.key.pub").exists()
    again = runner.invoke(cli, ["keys", "generate", "--out", str(path)])
    assert isinstance(again.exception, ConfigError)
    assert load_identity(path).seed() == key.seed()  # not overwritten


def test_registry_add_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    reg = tmp_path / "registry.json"
    alice = _generate(runner, tmp_path / "alice.key")
    bob = _generate(runner, tmp_path / "bob.key")
    carol = _generate(runner, tmp_path / "carol.key")
    for args in (
        ["--identity", str(tmp_path / "alice.key.pub"), "--index", "1", "--name", "alice"],
        ["--identity", str(tmp_path / "bob.key"), "--index", "2"],  # private file: public half
        ["--identity", carol, "--name", "carol"],  # a literal hex key
    ):
        result = runner.invoke(cli, ["keys", "registry", "add", "--registry", str(reg), *args])
        assert result.exit_code == 0, result.output
    loaded = load_registry(reg)
    assert loaded.identity_key(1) == bytes.fromhex(alice)
    assert loaded.identity_key(2) == bytes.fromhex(bob)
    entry = loaded.by_name("carol")
    assert entry is not None
    assert entry.public_key == bytes.fromhex(carol)
    assert load_identity(tmp_path / "bob.key").seed().hex() not in reg.read_text()

    shown = runner.invoke(cli, ["keys", "registry", "show", "--registry", str(reg), "--json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert [c.get("index") for c in doc["clients"]] == [1, 2, None]
    table = runner.invoke(cli, ["keys", "registry", "show", "-r", str(reg)])
    assert table.exit_code == 0, table.output
    assert "alice" in table.output
    assert "3 clients" in table.output


def test_registry_add_refuses_duplicates_and_missing_labels(tmp_path: Path) -> None:
    runner = CliRunner()
    reg = tmp_path / "registry.json"
    key = _generate(runner, tmp_path / "a.key")
    other = _generate(runner, tmp_path / "b.key")
    ok = runner.invoke(cli, ["keys", "registry", "add", "-r", str(reg), "-i", key, "--index", "1"])
    assert ok.exit_code == 0, ok.output
    same_key = runner.invoke(
        cli, ["keys", "registry", "add", "-r", str(reg), "-i", key, "--index", "2"]
    )
    assert isinstance(same_key.exception, ConfigError)
    same_index = runner.invoke(
        cli, ["keys", "registry", "add", "-r", str(reg), "-i", other, "--index", "1"]
    )
    assert isinstance(same_index.exception, ConfigError)
    no_label = runner.invoke(cli, ["keys", "registry", "add", "-r", str(reg), "-i", other])
    assert isinstance(no_label.exception, ConfigError)
    bad_key = runner.invoke(
        cli, ["keys", "registry", "add", "-r", str(reg), "-i", "nonsense", "--index", "3"]
    )
    assert isinstance(bad_key.exception, ConfigError)
    assert len(load_registry(reg)) == 1


def test_keys_show_prints_only_the_public_key(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "a.key"
    public = _generate(runner, path)
    result = runner.invoke(cli, ["keys", "show", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == public
    assert load_identity(path).seed().hex() not in result.output
