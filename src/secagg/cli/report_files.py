"""What ``secagg serve`` writes, round by round, each file atomically (temporary file + rename).

After round N ends (complete, aborted or interrupted) the output directory holds
``report-round-N.json`` and, when the round produced a sum, ``sum-round-N.npy``; ``report.json``
(every round so far, the latest one's fields on top) and ``sum.npy`` (the latest sum) are
replaced at the same time. A round with an encoding spec (``--spec``) also gets its decoded
floats, ``decoded-round-N.npz`` and ``decoded.npz`` (see :mod:`secagg.cli.decoded_output`).
A reader never sees a half-written file, and stopping the server
loses nothing that already ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from secagg.cli.decoded_output import DECODED_FILE, decoded_arrays
from secagg.errors import OutputError
from secagg.transport.server import RoundReport

__all__ = ["ReportFiles"]


class ReportFiles:
    """Writes one server run's reports and sums into ``output``."""

    def __init__(
        self, output: Path, *, started: float, defaults: dict[str, Any] | None = None
    ) -> None:
        self.output = output
        self.started = started
        self.defaults = defaults or {}
        self.reports: list[RoundReport] = []
        self._sum_round: int | None = None
        self._decoded: dict[str, Any] | None = None

    def prepare(self) -> None:
        """Create the directory and prove it is writable, before any client is accepted."""
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the output directory {self.output}: {exc.strerror or exc}"
            ) from None
        self._atomic(".write-check", lambda fh: fh.write(b"ok\n"))
        with contextlib.suppress(OSError):
            (self.output / ".write-check").unlink()

    def add(self, report: RoundReport, *, keep_sum: bool = True) -> None:
        """Record a finished round and write its files and the updated summary.

        ``keep_sum=False`` writes no sum for the round (an analytics answer that was withheld).
        """
        self.reports.append(report)
        if report.total is not None and keep_sum:
            total = report.total
            self._atomic(f"sum-round-{report.round}.npy", lambda fh: np.save(fh, total))
            self._atomic("sum.npy", lambda fh: np.save(fh, total))
            self._sum_round = report.round
        decoded = decoded_arrays(report)  # an encoding round: its floats, decoded with its spec
        if decoded is not None:
            arrays, self._decoded = decoded
            for name in (f"decoded-round-{report.round}.npz", DECODED_FILE):
                self._atomic(name, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]
        self._json(f"report-round-{report.round}.json", report.to_json())
        self._json("report.json", self.summary())

    def summary(self) -> dict[str, Any]:
        """``report.json``: the latest round's outcome on top, every round under ``rounds``."""
        final = self.reports[-1]
        return {
            "status": final.status,
            "abort_reason": final.abort_reason,
            "abort_detail": final.abort_detail,
            "round_id": final.round_id,
            "included": final.included,
            "dropped": final.dropped,
            "late": final.late,
            "bits": final.config.get("bits", self.defaults.get("bits")),
            "dim": final.config.get("dim", self.defaults.get("dim")),
            "clients": final.config.get("clients"),
            "threshold": final.config.get("threshold"),
            "degree": final.config.get("degree"),
            "mode": final.config.get("mode"),
            "spec": json.loads(final.spec) if final.spec else None,
            "spec_digest": final.spec_digest.hex(),
            "decoded": self._decoded,
            "timings": final.timings,
            "sum_file": "sum.npy" if self._sum_round is not None else None,
            "sum_round": self._sum_round,
            "started_at": self.started,
            "rounds": [r.to_json() for r in self.reports],
        }

    def _json(self, name: str, data: dict[str, Any]) -> None:
        text = (json.dumps(data, indent=2) + "\n").encode()
        self._atomic(name, lambda fh: fh.write(text))

    def _atomic(self, name: str, write: Callable[[IO[bytes]], object]) -> None:
        target = self.output / name
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.output)
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
