"""Every reason the transport puts on the wire or in an outcome is an enum value, by name.

A string literal spelling a reason (``"transport-error"``) is how a reason ends up in no
enum, or renamed in one place only; the reasons live in :mod:`secagg.reasons`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import secagg.transport
from secagg.reasons import AbortReason, DropReason, OutcomeReason, RejectReason

TRANSPORT = Path(secagg.transport.__file__).parent
REASONS = {r.value for enum in (AbortReason, DropReason, RejectReason, OutcomeReason) for r in enum}


def _not_reasons(tree: ast.Module) -> set[int]:
    """ids of docstrings (prose may name a reason) and dict keys (JSON field names)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            found.update(id(key) for key in node.keys if key is not None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _reason_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _not_reasons(tree)
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in REASONS
        and id(node) not in skip
    ]


def test_no_reason_string_literal_in_the_transport() -> None:
    sources = [p for p in sorted(TRANSPORT.glob("*.py")) if not p.name.endswith("_pb2.py")]
    assert len(sources) > 10  # the scan sees the package
    assert [hit for path in sources for hit in _reason_literals(path)] == []


def test_the_scan_finds_a_reason_literal(tmp_path: Path) -> None:
    """The check itself: a literal reason is reported, the enum member is not."""
    path = tmp_path / "sample.py"
    source = (
        '"""Says transport-error in prose."""\n'
        'A = "transport-error"\nB = X.TRANSPORT\nC = {"rejected": []}\n'
    )
    path.write_text(source)
    assert _reason_literals(path) == ["sample.py:2: 'transport-error'"]


def test_outcome_reasons_are_new_values() -> None:
    """OutcomeReason names only what no other enum says (one name per concept)."""
    others = {r.value for enum in (AbortReason, DropReason, RejectReason) for r in enum}
    assert not {r.value for r in OutcomeReason} & others
