"""The master: adds the released shard sums mod 2^b and reports every shard's outcome.

A shard's sum is released only when its round completed with at least ``min_shard_size``
included clients; a smaller one is discarded (its sum is neither added nor kept), a shard that
aborted or whose process failed contributes nothing and loses only its own clients. Every
shard runs with the total round's bit width b (chosen for all n clients, e.g. by the encoding
spec), so neither a shard sum nor the total of the shard sums wraps where the unsharded round
would not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.ring import ring_mask, word_dtype
from secagg.errors import ConfigError

__all__ = ["ShardOutcome", "ShardStatus", "ShardedResult", "combine", "read_shard_output"]


class ShardStatus(StrEnum):
    """What became of one shard's round."""

    RELEASED = "released"  # complete with >= min_shard_size included: its sum is in the total
    DISCARDED = "discarded"  # complete, but below min_shard_size: its sum is thrown away
    ABORTED = "aborted"  # the shard's round aborted (too few clients, a deadline, ...)
    FAILED = "failed"  # the shard's process died or never reported


@dataclass(slots=True)
class ShardOutcome:
    """One shard's round as the master sees it (``total`` only until :func:`combine`)."""

    shard: int
    address: str = ""
    status: ShardStatus = ShardStatus.FAILED
    included: list[str] = field(default_factory=list)
    dropped: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    total: npt.NDArray[np.unsignedinteger] | None = None

    def to_json(self) -> dict[str, Any]:
        """The report's entry for this shard (never its sum)."""
        return {
            "shard": self.shard,
            "address": self.address,
            "status": self.status.value,
            "included": len(self.included),
            "included_clients": self.included,
            "dropped": self.dropped,
            "detail": self.detail,
        }


@dataclass(slots=True)
class ShardedResult:
    """The total over the released shards and every shard's outcome."""

    total: npt.NDArray[np.unsignedinteger] | None
    included: list[str]
    shards: list[ShardOutcome]
    bits: int
    min_shard_size: int

    @property
    def released(self) -> list[int]:
        """Indices of the shards whose sums are in the total."""
        return [s.shard for s in self.shards if s.status is ShardStatus.RELEASED]

    def to_json(self) -> dict[str, Any]:
        """``report.json`` of a sharded round."""
        return {
            "status": "complete" if self.total is not None else "aborted",
            "bits": self.bits,
            "min_shard_size": self.min_shard_size,
            "included": self.included,
            "released_shards": self.released,
            "shards": [s.to_json() for s in self.shards],
        }


def combine(outcomes: list[ShardOutcome], bits: int, min_shard_size: int) -> ShardedResult:
    """Add the sums of the shards that completed with >= ``min_shard_size`` clients, mod 2^b.

    Sums of smaller shards are dropped from their outcome here, so they leave the master with
    nothing but their size. The total is None when no shard was released.
    """
    if min_shard_size < 1:
        raise ConfigError(f"min_shard_size must be at least 1, got {min_shard_size}")
    total: npt.NDArray[np.unsignedinteger] | None = None
    included: list[str] = []
    for outcome in outcomes:
        vector, outcome.total = outcome.total, None
        if outcome.status is not ShardStatus.RELEASED:
            continue
        if vector is None:
            outcome.status = ShardStatus.FAILED
            outcome.detail = "reported complete but sent no sum"
            continue
        if len(outcome.included) < min_shard_size:
            outcome.status = ShardStatus.DISCARDED
            outcome.detail = (
                f"{len(outcome.included)} included clients; the minimum is {min_shard_size}"
            )
            continue
        if total is None:
            total = np.zeros(vector.shape, dtype=word_dtype(bits))
        elif vector.shape != total.shape:
            raise ConfigError(
                f"shard {outcome.shard} summed {vector.shape} words, not {total.shape}"
            )
        np.add(total, vector.astype(total.dtype, copy=False), out=total)
        included.extend(outcome.included)
    if total is not None and bits not in (32, 64):
        np.bitwise_and(total, ring_mask(bits), out=total)
    return ShardedResult(total, sorted(included), outcomes, bits, min_shard_size)


def read_shard_output(shard: int, address: str, directory: Path) -> ShardOutcome:
    """A shard's outcome from what its ``secagg serve`` wrote (``report.json``, ``sum.npy``)."""
    outcome = ShardOutcome(shard, address)
    try:
        report = json.loads((directory / "report.json").read_text())
    except (OSError, ValueError):
        outcome.detail = "the shard wrote no report"
        return outcome
    outcome.included = [str(name) for name in report.get("included") or []]
    outcome.dropped = dict(report.get("dropped") or {})
    if report.get("status") != "complete":
        outcome.status = ShardStatus.ABORTED
        outcome.detail = f"{report.get('abort_reason')}: {report.get('abort_detail')}"
        return outcome
    try:
        outcome.total = np.load(directory / "sum.npy", allow_pickle=False)
    except (OSError, ValueError):
        outcome.detail = "the shard wrote no sum"
        return outcome
    outcome.status = ShardStatus.RELEASED  # until combine() checks its size
    return outcome
