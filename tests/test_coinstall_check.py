"""tools/check_coinstall.py judges pip's resolution report (the resolution itself needs PyPI and
runs as `make test-coinstall`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_check_coinstall", ROOT / "tools" / "check_coinstall.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(**versions: str) -> dict[str, Any]:
    """The shape of `pip install --report` (format version 1), trimmed to what the tool reads."""
    return {
        "version": "1",
        "install": [
            {
                "download_info": {"url": f"https://example.invalid/{n}"},
                "metadata": {"name": n, "version": v},
            }
            for n, v in versions.items()
        ],
    }


def test_a_resolution_with_flower_and_protobuf_6_passes() -> None:
    tool = _tool()
    report = _report(
        secagg="0.1.0", flwr="1.42.0", ray="2.55.1", protobuf="6.33.6", grpcio="1.85.3"
    )
    versions = tool.resolved_versions(report)
    assert versions["protobuf"] == "6.33.6"
    assert tool.problems(versions, tool.EXPECTED) == []


def test_names_are_normalised() -> None:
    versions = _tool().resolved_versions(_report(Typing_Extensions="4.16.0"))
    assert versions == {"typing-extensions": "4.16.0"}


def test_missing_packages_and_wrong_lines_are_named() -> None:
    tool = _tool()
    found = tool.problems(
        tool.resolved_versions(_report(secagg="0.1.0", flwr="1.41.2", protobuf="8.0.0")),
        tool.EXPECTED,
    )
    assert "flwr resolved to 1.41.2, expected 1.42.*" in found
    assert "ray is not in the resolved set" in found
    assert "protobuf resolved to 8.0.0, expected 6.x or 7.x" in found


def test_a_set_without_protobuf_is_refused() -> None:
    tool = _tool()
    found = tool.problems(tool.resolved_versions(_report(secagg="0.1.0")), {"secagg": None})
    assert found == ["protobuf is not in the resolved set"]
