"""The committed gRPC/protobuf modules run on every protobuf/grpcio version pyproject admits.

Protobuf's generated code refuses a runtime older than the protoc that made it, and a runtime
supports gencode at most one major version older; grpcio's generated stubs refuse a grpcio older
than the grpcio-tools that made them. So the committed modules fix the floors: regenerating them
with a newer generator (e.g. the grpcio-tools of a dev environment instead of ``make proto``)
would silently make secagg uninstallable next to Flower (protobuf < 7). These tests catch that.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from secagg.transport import secagg_pb2, secagg_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
PB2 = ROOT / "src" / "secagg" / "transport" / "secagg_pb2.py"
# Flower 1.42's own pins (Requires-Dist of flwr-1.42.0); issue 12 asks to install next to it.
FLOWER_1_42 = {"protobuf": SpecifierSet(">=5.28.0,<7.0.0"), "grpcio": SpecifierSet(">=1.70.0,<2")}


def _specifiers() -> dict[str, SpecifierSet]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    return {r.name: r.specifier for r in reqs}


def _floor(spec: SpecifierSet) -> Version:
    floors = [Version(s.version) for s in spec if s.operator == ">="]
    assert len(floors) == 1, f"expected exactly one '>=' bound in {spec}"
    return floors[0]


def _protobuf_gencode_version() -> Version:
    """The version the generated module passes to protobuf's runtime check when imported."""
    for node in ast.walk(ast.parse(PB2.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "ValidateProtobufRuntimeVersion"
        ):
            major, minor, patch = (ast.literal_eval(a) for a in node.args[1:4])
            return Version(f"{major}.{minor}.{patch}")
    raise AssertionError(f"{PB2} has no ValidateProtobufRuntimeVersion call")


def _load_floors_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_floors", ROOT / "tools" / "floors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_protobuf_gencode_is_not_newer_than_the_declared_floor() -> None:
    gencode = _protobuf_gencode_version()
    spec = _specifiers()["protobuf"]
    assert gencode <= _floor(spec), (
        f"secagg_pb2.py is protobuf {gencode} gencode but pyproject admits protobuf {spec}; "
        "regenerate with `make proto` (pinned generator) or raise the floor"
    )
    # The header comment says the same version as the runtime check.
    assert f"# Protobuf Python Version: {gencode}" in PB2.read_text()


def test_protobuf_upper_bound_stays_within_one_major_of_the_gencode() -> None:
    gencode = _protobuf_gencode_version()
    spec = _specifiers()["protobuf"]
    # Protobuf runtimes support gencode of their own and the previous major version only.
    assert Version(f"{gencode.major + 1}.999") in spec
    assert Version(f"{gencode.major + 2}.0.0") not in spec
    # The gencode's own major line stays installable: that is what Flower (protobuf < 7) needs.
    assert Version(f"{gencode.major}.999") in spec


def test_a_version_flower_1_42_accepts_runs_the_gencode() -> None:
    """Flower 1.42 requires protobuf>=5.28,<7 and grpcio>=1.70 (its wheel's metadata)."""
    gencode = _protobuf_gencode_version()
    specs = _specifiers()
    assert gencode in FLOWER_1_42["protobuf"], f"protobuf {gencode} gencode needs a runtime >= it"
    assert gencode in specs["protobuf"]
    grpc_floor = _floor(specs["grpcio"])
    assert grpc_floor in FLOWER_1_42["grpcio"]
    assert Version(secagg_pb2_grpc.GRPC_GENERATED_VERSION) <= grpc_floor


def test_grpc_stubs_are_not_newer_than_the_declared_grpcio_floor() -> None:
    generated = Version(secagg_pb2_grpc.GRPC_GENERATED_VERSION)
    spec = _specifiers()["grpcio"]
    assert generated <= _floor(spec), (
        f"secagg_pb2_grpc.py needs grpcio>={generated} but pyproject admits grpcio {spec}"
    )


def test_committed_code_comes_from_the_pinned_generator() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "tools" / "proto-requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert re.fullmatch(r"[0-9.]+", pins["grpcio-tools"]), pins
    assert pins["grpcio-tools"] == secagg_pb2_grpc.GRPC_GENERATED_VERSION


def test_generated_module_loads_on_the_installed_runtime() -> None:
    msg = secagg_pb2.Hello(protocol_version=1, name="c0", dim=3)
    assert secagg_pb2.Hello.FromString(msg.SerializeToString()) == msg


def test_floors_tool_reads_the_same_floors() -> None:
    specs = _specifiers()
    floors = _load_floors_tool().declared_floors()
    assert floors == {name: str(_floor(specs[name])) for name in ("protobuf", "grpcio")}


def test_floors_tool_refuses_a_dependency_without_a_floor(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["protobuf<8", "grpcio>=1.72.2"]\n')
    with pytest.raises(SystemExit, match=r"'protobuf<8' has no '>=' floor"):
        _load_floors_tool().declared_floors(pyproject)
