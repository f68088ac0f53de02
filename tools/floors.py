"""The declared floors of secagg's protobuf/gRPC dependencies, for the floor-version test run.

    python tools/floors.py requirements   # prints "protobuf==<floor>" and "grpcio==<floor>"
    python tools/floors.py check          # exit 1 unless exactly those versions are installed

The floors are read from pyproject.toml (the ``>=`` bound of each dependency), so ``make
test-floor`` always tests what the package declares, not a copy of it. Standard library only:
``requirements`` runs under the bare interpreter before any environment exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The packages whose oldest allowed version the committed gencode must run on.
FLOOR_PACKAGES = ("protobuf", "grpcio")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")
_LOWER = re.compile(r">=\s*([0-9][0-9A-Za-z.]*)")


def declared_floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Map each of FLOOR_PACKAGES to the ``>=`` version in pyproject's dependencies."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    floors: dict[str, str] = {}
    for dep in deps:
        match = _REQUIREMENT.match(dep.split(";", 1)[0])
        if match is None:
            continue
        name = match.group(1).lower().replace("_", "-")
        if name in FLOOR_PACKAGES:
            lower = _LOWER.search(match.group(2))
            if lower is None:
                raise SystemExit(f"pyproject.toml: {dep!r} has no '>=' floor; expected one")
            floors[name] = lower.group(1)
    missing = [p for p in FLOOR_PACKAGES if p not in floors]
    if missing:
        raise SystemExit(f"pyproject.toml: no dependency on {', '.join(missing)}")
    return floors


def main(argv: list[str]) -> int:
    floors = declared_floors()
    if argv == ["requirements"]:
        for name, version in floors.items():
            print(f"{name}=={version}")
        return 0
    if argv == ["check"]:
        wrong = {
            name: metadata.version(name)
            for name, version in floors.items()
            if metadata.version(name) != version
        }
        for name, installed in wrong.items():
            print(f"{name} {installed} installed, expected the declared floor {floors[name]}")
        if not wrong:
            print("floor versions installed: " + ", ".join(f"{n} {v}" for n, v in floors.items()))
        return 1 if wrong else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
