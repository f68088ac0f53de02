"""Issue 11.15: every code block in README.md runs as written, so the README cannot rot.

Blocks are found automatically: every fenced block tagged ``python`` or ``sh``/``bash``/
``shell`` is checked (Python compiled, shell parsed by ``bash -n``), then all of them run in
README order in one scratch directory (later blocks may use files earlier ones made), each in
a fresh process with this checkout's ``secagg``. A block that cannot run here (it needs a server
on another machine, TLS files, ...) is preceded by the line
``<!-- readme-test: no-run: <reason> -->``; it is still compiled/parsed. Untagged blocks are
diagrams or output, never run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from secagg.cli.main import cli

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!-- readme-test: no-run: (?P<reason>\S.*?) -->$")
_SHELL = {"sh", "bash", "shell"}
# `secagg` in shell blocks is this checkout's CLI, whatever is installed on PATH.
_SHELL_PRELUDE = f'secagg() {{ "{sys.executable}" -m secagg.cli.main "$@"; }}\nset -euo pipefail\n'


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    no_run: str | None  # the reason, when marked

    @property
    def label(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def readme_blocks(text: str) -> list[Block]:
    """Fenced python/shell blocks with their no-run marker, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, lang = i, match.group(1)
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        if lang == "python" or lang in _SHELL:
            code = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append(Block(start + 1, lang, code, marker.group("reason") if marker else None))
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_readme_has_runnable_blocks_of_both_kinds() -> None:
    langs = {b.lang for b in BLOCKS if b.no_run is None}
    assert "python" in langs
    assert langs & _SHELL


def test_every_marker_is_attached_to_a_code_block() -> None:
    lines = README.read_text().splitlines()
    markers = [i for i, line in enumerate(lines) if "readme-test" in line]
    for i in markers:
        assert _MARKER.match(lines[i]), f"README.md:{i + 1}: malformed marker {lines[i]!r}"
        assert i + 1 < len(lines), f"README.md:{i + 1}: marker at the end of the file"
        assert _FENCE.match(lines[i + 1]), f"README.md:{i + 1}: marker not followed by a fence"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.label for b in BLOCKS])
def test_block_is_valid_code(block: Block) -> None:
    if block.lang == "python":
        compile(block.code, block.label, "exec")  # e.g. a top-level await is a SyntaxError
    else:
        result = subprocess.run(
            ["bash", "-n"], input=_SHELL_PRELUDE + block.code, text=True, capture_output=True
        )
        assert result.returncode == 0, f"{block.label}: {result.stderr}"


def test_blocks_run_in_order(tmp_path: Path) -> None:
    for block in BLOCKS:
        if block.no_run is not None:
            continue
        if block.lang == "python":
            args, stdin = [sys.executable, "-"], block.code
        else:
            args, stdin = ["bash", "-s"], _SHELL_PRELUDE + block.code
        result = subprocess.run(
            args, input=stdin, text=True, capture_output=True, cwd=tmp_path, timeout=600
        )
        assert result.returncode == 0, (
            f"{block.label} failed ({result.returncode}):\n{block.code}\n"
            f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-4000:]}"
        )


def _secagg_commands(code: str) -> list[list[str]]:
    """Every ``secagg ...`` command line of a shell block, continuation lines joined."""
    joined = code.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("secagg "):
            commands.append(shlex.split(line))
    return commands


SHELL_BLOCKS = [b for b in BLOCKS if b.lang in _SHELL]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.label for b in SHELL_BLOCKS])
def test_shell_blocks_use_only_options_that_exist(block: Block) -> None:
    """Also for blocks that cannot run here: a renamed flag must not survive in the README."""
    for argv in _secagg_commands(block.code):
        command: click.Command = cli
        words = argv[1:]
        while isinstance(command, click.Group) and words and words[0] in command.commands:
            command, words = command.commands[words[0]], words[1:]
        # Hidden options are deprecated aliases: the README must use the current names.
        known = {
            opt
            for p in command.params
            if not getattr(p, "hidden", False)
            for opt in (*p.opts, *p.secondary_opts)
        }
        used = {w.split("=", 1)[0] for w in words if w.startswith("-")}
        assert used <= known, f"{block.label}: {' '.join(argv)} uses unknown {used - known}"


def test_the_option_check_catches_a_renamed_flag() -> None:
    stale = Block(1, "sh", "secagg simulate --clients 3 \\\n    --dropout 0.1\n", None)
    with pytest.raises(AssertionError, match="--dropout"):
        test_shell_blocks_use_only_options_that_exist(stale)
