"""Check that pip can install secagg together with Flower 1.42 in one environment.

    python tools/check_coinstall.py [REQUIREMENT ...]   # default: flwr[simulation]==1.42.*

Runs ``pip install --dry-run --ignore-installed --report`` for this checkout plus the given
requirements with the running interpreter's pip: a full resolution from the package index as
into a fresh environment, without installing or downloading any wheel (pip reads only the
metadata, so no torch or ray wheel is fetched). Exits 1 with pip's own explanation when the
resolution fails, or when the resolved set misses a package or carries a protobuf outside
secagg's supported range. Needs the package index (PyPI).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["flwr[simulation]==1.42.*"]
# What the default resolution must contain: secagg itself, Flower and its simulation engine.
EXPECTED: dict[str, str | None] = {"secagg": None, "flwr": "1.42.", "ray": None}


def resolved_versions(report: dict[str, Any]) -> dict[str, str]:
    """Normalised package name -> version, from a ``pip install --report`` JSON document."""
    return {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in report.get("install", [])
    }


def problems(versions: dict[str, str], expected: dict[str, str | None]) -> list[str]:
    """What is wrong with a resolved set: missing packages, wrong lines, protobuf out of range."""
    found: list[str] = []
    for name, prefix in expected.items():
        if name not in versions:
            found.append(f"{name} is not in the resolved set")
        elif prefix is not None and not versions[name].startswith(prefix):
            found.append(f"{name} resolved to {versions[name]}, expected {prefix}*")
    protobuf = versions.get("protobuf")
    if protobuf is None:
        found.append("protobuf is not in the resolved set")
    elif int(protobuf.split(".")[0]) not in (6, 7):
        found.append(f"protobuf resolved to {protobuf}, expected 6.x or 7.x")
    return found


def main(argv: list[str]) -> int:
    requirements = argv or DEFAULT
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        cmd = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--report", str(report_path), str(ROOT), *requirements,
        ]  # fmt: skip
        # The command is this interpreter's pip with fixed flags; only requirement strings vary.
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            print(f"pip cannot install secagg with {' '.join(requirements)}:", file=sys.stderr)
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return 1
        versions = resolved_versions(json.loads(report_path.read_text()))
    expected: dict[str, str | None] = dict(EXPECTED) if not argv else {"secagg": None}
    wrong = problems(versions, expected)
    for line in wrong:
        print(line, file=sys.stderr)
    if wrong:
        return 1
    shown = ", ".join(
        f"{name} {versions[name]}"
        for name in ("secagg", "flwr", "ray", "protobuf", "grpcio")
        if name in versions
    )
    print(f"secagg + {' '.join(requirements)} resolve ({len(versions)} packages): {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
