"""Issue 16's size rule: no module in src/secagg over 400 lines, no function over 60.

Generated protobuf modules (``*_pb2*.py``) are exempt. A function's length runs from its
``def`` line to its last line, signature included; its decorators and its docstring do not
count (a public function with twenty documented keyword arguments, such as
:func:`secagg.simulate`, is long in prose, not in logic).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "secagg"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "_pb2" not in p.name)


def _docstring(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """How many lines the function's docstring takes (0 if it has none)."""
    first = func.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                end = child.end_lineno or child.lineno
                found.append((f"{prefix}{child.name}", end - child.lineno + 1 - _docstring(child)))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def test_the_size_check_sees_the_package() -> None:
    assert len(_modules()) > 50
    assert not any("_pb2" in p.name for p in _modules())


def test_a_function_is_measured_without_its_docstring() -> None:
    tree = ast.parse('def f(x):\n    """Doc\n\n    more.\n    """\n    y = x\n    return y\n')
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    assert _docstring(func) == 4


def test_no_module_is_over_400_lines() -> None:
    long = {}
    for path in _modules():
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_MODULE_LINES:
            long[str(path.relative_to(SRC))] = count
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for path in _modules():
        for name, count in _function_lengths(path):
            if count > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(SRC)}:{name}"] = count
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (extract helpers): {long}"
