"""One shard: a ``secagg serve`` process on this machine, watched until it exits.

The shard listens on ``bind`` (HOST:0: a free port); its address is read from the
``listening on`` line it logs. Its stderr goes to ``serve.log`` in its output directory.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from secagg.errors import ConfigError
from secagg.sharding.master import ShardOutcome, ShardStatus, read_shard_output

__all__ = ["LocalShard", "shard_command"]

_LISTENING = re.compile(r"listening on (\S+) \(")


def shard_command(serve_args: list[str], capacity: int, min_clients: int) -> list[str]:
    """The ``secagg serve`` command line of a shard of ``capacity`` clients."""
    return [
        sys.executable,
        "-m",
        "secagg.cli.main",
        "serve",
        *serve_args,
        "--clients",
        str(capacity),
        "--min-clients",
        str(min_clients),
    ]


class LocalShard:
    """A shard's ``secagg serve`` child process."""

    def __init__(self, index: int, command: list[str], bind: str, output: Path) -> None:
        self.index = index
        self.output = output
        output.mkdir(parents=True, exist_ok=True)
        self._log = (output / "serve.log").open("w", encoding="utf-8")
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, argv list, no shell
            [*command, "--address", bind, "--output", str(output / "out")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.address = ""
        self._listening = threading.Event()
        # The child's log must be drained as it comes, or a full pipe would stall it.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The shard process's id."""
        return self.process.pid

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._log.write(line)
            self._log.flush()
            found = _LISTENING.search(line)
            if found and not self.address:
                self.address = found.group(1)
                self._listening.set()
        self._listening.set()  # exited: nobody waits for an address that will not come

    def wait_listening(self, timeout: float) -> str:
        """The shard's address once it listens; ConfigError if it exits or times out first."""
        self._listening.wait(timeout)
        if not self.address:
            raise ConfigError(
                f"shard {self.index} did not start listening within {timeout:.0f}s "
                f"(see {self.output / 'serve.log'})"
            )
        return self.address

    def wait(self) -> ShardOutcome:
        """Wait for the shard's round to end; its outcome (FAILED if the process died)."""
        code = self.process.wait()
        self._reader.join()
        self._log.close()
        outcome = read_shard_output(self.index, self.address, self.output / "out")
        if code < 0:
            outcome = ShardOutcome(self.index, self.address, ShardStatus.FAILED)
            outcome.detail = f"the shard process was killed by {signal.Signals(-code).name}"
        elif code not in (0, 1) and outcome.status is ShardStatus.FAILED:
            outcome.detail = f"the shard process exited with status {code}"
        return outcome

    def stop(self) -> None:
        """Ask the shard to end its round (SIGTERM: it reports it as interrupted)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def discard_sum_files(output: Path) -> None:
    """Delete a discarded shard's sum files, so no one reads a sum that was not released."""
    for path in (output / "out").glob("sum*.npy"):
        path.unlink(missing_ok=True)
    for path in (output / "out").glob("decoded*.npz"):
        path.unlink(missing_ok=True)
