"""The core layers stay pure: no I/O, threads, clocks or logging, one entropy source, no upward
imports.

``protocol/``, ``crypto/``, ``graph/`` and ``encoding/`` are parsed with :mod:`ast` (nothing is
imported), so the test sees every import, including ones inside functions.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "secagg"
CORE_PACKAGES = ("protocol", "crypto", "graph", "encoding")
FORBIDDEN_MODULES = frozenset(
    {"socket", "asyncio", "grpc", "threading", "time", "logging", "multiprocessing"}
)
UPPER_LAYERS = (
    "secagg.transport",
    "secagg.cli",
    "secagg.simulation",
    "secagg.analytics",
    "secagg.service",
    "secagg.identity",
    "secagg.parallel",
    "secagg.flower",
    "secagg.sharding",
)
ENTROPY_MODULE = SRC / "crypto" / "entropy.py"


@dataclass(frozen=True)
class Imported:
    path: Path
    line: int
    module: str  # absolute dotted name of what is imported (for "from m import n": "m.n")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(path: Path, tree: ast.AST) -> list[Imported]:
    out: list[Imported] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Imported(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(path).split(".")
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            out.append(Imported(path, node.lineno, base))
            out += [Imported(path, node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def _core_files() -> list[Path]:
    return sorted(p for pkg in CORE_PACKAGES for p in (SRC / pkg).rglob("*.py"))


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _where(i: Imported) -> str:
    return f"{i.path.relative_to(SRC.parent)}:{i.line} imports {i.module}"


def test_the_core_packages_exist() -> None:
    files = _core_files()
    for pkg in CORE_PACKAGES:
        assert any(p.is_relative_to(SRC / pkg) for p in files), pkg
    assert ENTROPY_MODULE in files


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_imports_no_io_threads_clocks_or_logging(package: str) -> None:
    bad = [
        _where(i)
        for path in sorted((SRC / package).rglob("*.py"))
        for i in _imports(path, _parse(path))
        if i.module.split(".")[0] in FORBIDDEN_MODULES
    ]
    assert bad == []


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_imports_nothing_above_it(package: str) -> None:
    bad = [
        _where(i)
        for path in sorted((SRC / package).rglob("*.py"))
        for i in _imports(path, _parse(path))
        if any(_within(i.module, upper) for upper in UPPER_LAYERS)
    ]
    assert bad == []


# What the core may import from secagg: itself and the leaf modules below every layer. A new
# top-level module the core needs belongs here only if it imports nothing above the core either.
CORE_MAY_IMPORT = (
    *(f"secagg.{pkg}" for pkg in CORE_PACKAGES),
    "secagg.errors",
    "secagg.reasons",
)


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_imports_from_secagg_only_the_core_and_leaf_modules(package: str) -> None:
    """Also rules out ``from secagg import X``, which would load the package's exports."""
    bad = [
        _where(i)
        for path in sorted((SRC / package).rglob("*.py"))
        for i in _imports(path, _parse(path))
        if _within(i.module, "secagg") and not any(_within(i.module, ok) for ok in CORE_MAY_IMPORT)
        # "from secagg.protocol import x" also yields "secagg.protocol.x"; bare "secagg" is bad
    ]
    assert bad == []


def test_leaf_modules_import_only_leaf_modules() -> None:
    leaves = [m for m in CORE_MAY_IMPORT if m.removeprefix("secagg.") not in CORE_PACKAGES]
    bad = [
        _where(i)
        for leaf in leaves
        for path in [SRC / f"{leaf.removeprefix('secagg.')}.py"]
        for i in _imports(path, _parse(path))
        if _within(i.module, "secagg") and not any(_within(i.module, ok) for ok in leaves)
    ]
    assert bad == []


def _entropy_uses(path: Path, tree: ast.Module) -> list[str]:
    """Uses of ``os.urandom`` or the ``secrets`` module (imports, attribute reads, names)."""
    found: list[str] = []
    where = f"{path.relative_to(SRC.parent)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "secrets":
                    found.append(f"{where}:{node.lineno} imports secrets")
        elif isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names}
            if node.module == "secrets" or (node.module == "os" and "urandom" in names):
                found.append(f"{where}:{node.lineno} imports from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr == "urandom":
            found.append(f"{where}:{node.lineno} uses .urandom")
    return found


def test_only_the_entropy_module_draws_system_randomness() -> None:
    everywhere = sorted(SRC.rglob("*.py"))
    uses = {path: _entropy_uses(path, _parse(path)) for path in everywhere}
    assert uses[ENTROPY_MODULE], "the entropy module should be the one drawing os.urandom"
    assert [u for path, found in uses.items() if path != ENTROPY_MODULE for u in found] == []


def test_the_checker_sees_what_it_must_forbid() -> None:
    """The walkers catch relative, nested and aliased forms (guards the test itself)."""
    path = SRC / "protocol" / "client" / "session.py"
    tree = ast.parse(
        "import asyncio as aio\n"
        "def f():\n"
        "    from ...transport import client\n"
        "    import os\n"
        "    return os.urandom(1)\n"
        "from secrets import token_bytes\n"
    )
    modules = {i.module for i in _imports(path, tree)}
    assert "asyncio" in modules
    assert "secagg.transport.client" in modules
    assert len(_entropy_uses(path, tree)) == 2


HEAVY_MODULES = ("grpc", "asyncio", "socket")


@pytest.mark.parametrize("statement", ["import secagg", "import secagg.protocol.client.session"])
def test_importing_the_package_or_the_core_loads_no_transport(statement: str) -> None:
    """A fresh interpreter: the package's exports load lazily, the core needs no network stack."""
    probe = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert "secagg" in out
    loaded = [m for m in out if m.split(".")[0] in HEAVY_MODULES]
    assert loaded == []


def test_lazy_exports_resolve_to_their_defining_objects() -> None:
    import secagg
    from secagg.encoding import DPConfig, EncodingSpec
    from secagg.encoding.context import context_digest
    from secagg.encoding.task import Task, pack_arrays, unpack_arrays
    from secagg.protocol.config import RoundConfig
    from secagg.protocol.policy import ClientPolicy
    from secagg.service.server import RoundOutcome, Server
    from secagg.simulation.engine import SimulationResult, simulate
    from secagg.transport.client import Client, Outcome

    expected = {
        "Client": Client,
        "Outcome": Outcome,
        "RoundOutcome": RoundOutcome,
        "Server": Server,
        "Task": Task,
        "pack_arrays": pack_arrays,
        "unpack_arrays": unpack_arrays,
        "ClientPolicy": ClientPolicy,
        "DPConfig": DPConfig,
        "EncodingSpec": EncodingSpec,
        "RoundConfig": RoundConfig,
        "SimulationResult": SimulationResult,
        "context_digest": context_digest,
        "simulate": simulate,
    }
    assert set(secagg.__all__) == {*expected, "__version__"}
    for name, value in expected.items():
        assert getattr(secagg, name) is value
    assert set(secagg.__all__) <= set(dir(secagg))
    with pytest.raises(AttributeError, match="no_such_export"):
        _ = secagg.no_such_export  # type: ignore[attr-defined]


def test_the_transport_client_does_not_import_the_server() -> None:
    """The client needs the service's method name, not the 900-line server module."""
    path = SRC / "transport" / "client.py"
    bad = [
        _where(i)
        for i in _imports(path, _parse(path))
        if _within(i.module, "secagg.transport.server")
    ]
    assert bad == []


def test_the_client_command_does_not_import_the_simulator() -> None:
    """Parsing a round name is the protocol's job (Round.parse), not the simulator's."""
    path = SRC / "cli" / "client_cmd.py"
    bad = [
        _where(i) for i in _imports(path, _parse(path)) if _within(i.module, "secagg.simulation")
    ]
    assert bad == []


def test_the_process_pool_does_not_reach_into_the_protocol() -> None:
    """parallel.py expands masks from key lists; deriving them is the protocol's business."""
    path = SRC / "parallel" / "pool.py"
    bad = [_where(i) for i in _imports(path, _parse(path)) if _within(i.module, "secagg.protocol")]
    assert bad == []


# The top level of the package is its map: one package per layer or job, and the two leaf
# modules every layer shares. A new top-level module needs a reason to be here and an entry.
TOP_LEVEL = {
    "packages": {
        "analytics",
        "cli",
        "crypto",
        "encoding",
        "flower",
        "graph",
        "identity",
        "parallel",
        "protocol",
        "service",
        "sharding",
        "simulation",
        "transport",
    },
    "modules": {"__init__.py", "errors.py", "reasons.py"},
}


def test_the_top_level_lists_the_layers() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.name for p in SRC.glob("*.py")}
    assert (packages, modules) == (TOP_LEVEL["packages"], TOP_LEVEL["modules"])
