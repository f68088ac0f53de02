"""Every reason is an enum value: no string literal in src spells a reason outside reasons.py.

Parsed with :mod:`ast` (docstrings are prose and may name reasons). A literal equal to a reason
value means someone bypassed the enum; use the member instead, so renaming or removing a reason
is one edit that the type checker follows.
"""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

import pytest

from secagg import reasons
from secagg.errors import RoundAbortedError
from secagg.protocol.server.unmask import SecretFailure
from secagg.reasons import AbortReason

SRC = Path(__file__).resolve().parents[1] / "src" / "secagg"


def _reason_values() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name in reasons.__all__:
        enum = getattr(reasons, name)
        assert issubclass(enum, StrEnum), name
        for member in enum:
            values.setdefault(member.value, []).append(f"{name}.{member.name}")
    return values


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, scopes) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


# Strings that equal a reason value by coincidence: (file, text) pairs that are no reason.
NOT_REASONS = {
    ("transport/report.py", "rejected"),  # report.json's count of refused Hellos, a field name
}


def _literals(path: Path, values: dict[str, list[str]]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = _docstrings(tree)
    where = path.relative_to(SRC).as_posix()
    return [
        f"{where}:{node.lineno} spells {node.value!r}; use {' or '.join(values[node.value])}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in values
        and id(node) not in docs
        and (where, node.value) not in NOT_REASONS
    ]


def _scanned() -> list[Path]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "reasons.py" or rel.endswith("_pb2.py") or rel.endswith("_pb2_grpc.py"):
            continue
        out.append(path)
    return out


def test_no_reason_is_spelled_as_a_string_literal() -> None:
    values = _reason_values()
    found = [hit for path in _scanned() for hit in _literals(path, values)]
    assert found == []


def test_the_scan_sees_what_it_must_forbid() -> None:
    """Guards the scan itself: literals are found, docstrings and enum members are not."""
    probe = SRC / "protocol" / "probe.py"
    text = (
        '"""Drops with "no-response" are fine in prose."""\n'
        "from secagg.reasons import DropReason\n"
        "A = DropReason.NO_RESPONSE\n"
        'B = {"too-few-clients": 1}\n'
        "def f():\n"
        '    """malformed-message"""\n'
        '    return "malformed-message"\n'
    )
    tree = ast.parse(text)
    docs = _docstrings(tree)
    values = _reason_values()
    hits = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value in values and id(n) not in docs
    ]
    assert hits == ["too-few-clients", "malformed-message"]
    assert probe not in _scanned()  # (no such file: the scan walks real files only)
    assert SRC / "transport" / "codec.py" in _scanned()
    assert SRC / "protocol" / "server" / "session.py" in _scanned()


@pytest.mark.parametrize("reason", list(AbortReason))
def test_round_aborted_error_carries_the_enum_member(reason: AbortReason) -> None:
    assert RoundAbortedError(reason.value, "d").reason is reason
    assert RoundAbortedError(reason, "d").reason is reason


def test_secret_failures_carry_abort_reasons() -> None:
    from secagg.crypto.shamir import split_secret
    from secagg.protocol.server.unmask import reconstruct_all

    shares = split_secret(bytes(32), [1, 2, 3], 3)
    out = reconstruct_all({5: {s.x: s for s in shares[:2]}}, {}, {}, 3)
    assert [f.reason for f in out.failures] == [AbortReason.TOO_FEW_SHARES]
    assert isinstance(out.failures[0], SecretFailure)
    assert type(out.failures[0].reason) is AbortReason
