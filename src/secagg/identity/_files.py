"""File helpers shared by the identity modules: JSON reads, atomic writes, permission checks."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

from secagg.crypto.entropy import default_random
from secagg.errors import ConfigError


def _read_json(path: Path, what: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.__class__.__name__}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None


def _temp_path(path: Path) -> Path:
    """An unpredictable sibling of ``path`` to write before the rename."""
    suffix = default_random().random_bytes(8).hex()
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{suffix}")


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a fresh temporary file with ``mode`` in the same directory, then rename.

    The temporary file is created with O_EXCL | O_NOFOLLOW: a file or symlink planted at its
    path makes the write fail instead of sending a private key wherever the link points.
    """
    tmp = _temp_path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: creating {tmp.name} failed ({exc.strerror or exc}); "
            "something already exists at that path"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)  # whatever the umask made of it
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _refuse_open_mode(p: Path, what: str, forbidden: int, problem: str, fix: str) -> None:
    """Refuse a missing file, or one whose mode has any ``forbidden`` permission bit."""
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if os.name == "posix" and mode & forbidden:
        raise ConfigError(f"{what} {p} {problem} (mode {mode:04o}); run: {fix} {p}")
