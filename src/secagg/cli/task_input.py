"""Where ``secagg client --rounds N`` gets each round's input: a fixed vector, or a command.

``--task-command CMD`` runs CMD (split like a shell would, but with no shell) once per round
with ``SECAGG_TASK`` naming a file that holds the round's task bytes (empty when the server
hands out none), ``SECAGG_OUTPUT`` naming where it must write its 1-D ``.npy`` vector, and
``SECAGG_ROUND`` the server's round number. A command that fails or writes no usable vector
makes this client leave the round with ``invalid-input``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.encoding.task import Task
from secagg.errors import ConfigError

__all__ = ["command_input", "fixed_input"]


def fixed_input(vector: npt.NDArray[Any] | None) -> Callable[[Task | None], npt.NDArray[Any]]:
    """The same vector in every round."""
    assert vector is not None

    def fn(_task: Task | None) -> npt.NDArray[Any]:
        return vector

    return fn


def command_input(command: str) -> Callable[[Task | None], npt.NDArray[Any]]:
    """Run ``command`` on each round's task and read the vector it wrote."""
    argv = shlex.split(command)
    if not argv:
        raise ConfigError("--task-command is empty")

    def fn(task: Task | None) -> npt.NDArray[Any]:
        with tempfile.TemporaryDirectory(prefix="secagg-task-") as tmp:
            task_file = Path(tmp) / "task.bin"
            out_file = Path(tmp) / "input.npy"
            task_file.write_bytes(b"" if task is None else task.data)
            env = {
                **os.environ,
                "SECAGG_TASK": str(task_file),
                "SECAGG_OUTPUT": str(out_file),
                "SECAGG_ROUND": str(0 if task is None else task.round),
            }
            # The operator's own command, run without a shell: argv is theirs.
            done = subprocess.run(argv, env=env, check=False)  # noqa: S603
            if done.returncode != 0:
                raise ConfigError(f"--task-command exited with {done.returncode}")
            try:
                data = np.load(out_file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"--task-command wrote no .npy vector: {exc}") from None
        return np.asarray(data)

    return fn
