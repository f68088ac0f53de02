"""The outcome of an analytics round: the released answer with its privacy account, or why not."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from secagg.analytics.query import Label, Query

__all__ = ["AnalyticsResult"]


def _label_text(label: Label) -> str:
    return " / ".join(str(p) for p in label) if isinstance(label, tuple) else str(label)


@dataclass
class AnalyticsResult:
    """What :func:`secagg.analytics.run` returns.

    When ``released`` is False, ``reason`` (an :class:`~secagg.reasons.AbortReason` value) and
    ``detail`` say why, and ``counts``/``answer``/``stddev``/``intervals`` are empty.
    ``included``/``dropped`` are 0-based client indices as in :func:`secagg.simulate` (client
    names over the network).
    ``epsilon``/``delta`` are the guarantee of the release (None without DP); ``stddev`` is the
    noise standard deviation actually in each count, ``intervals`` the ``confidence`` intervals.
    ``round_context_digest`` is what the round config bound (the analytics-round spec's
    digest), None when no round ran.
    """

    query: Query
    released: bool
    included: list[Any]
    dropped: dict[Any, Any]
    min_clients: int
    counts: dict[Label, float] = field(default_factory=dict)
    answer: dict[str, float] = field(default_factory=dict)
    stddev: dict[Label, float] = field(default_factory=dict)
    intervals: dict[Label, tuple[float, float]] = field(default_factory=dict)
    epsilon: float | None = None
    delta: float | None = None
    confidence: float | None = None
    reason: str | None = None
    detail: str = ""
    devices_per_client: int = 1
    bits: int | None = None
    round_context_digest: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready report (labels as text; tuples joined with ' / ')."""
        rows = [
            {
                "label": _label_text(label),
                "count": value,
                **({"stddev": self.stddev[label]} if label in self.stddev else {}),
                **({"interval": list(self.intervals[label])} if label in self.intervals else {}),
            }
            for label, value in self.counts.items()
        ]
        return {
            "query": self.query.to_dict(),
            "query_digest": self.query.digest().hex(),
            "round_digest": (
                None if self.round_context_digest is None else self.round_context_digest.hex()
            ),
            "released": self.released,
            "reason": self.reason,
            "detail": self.detail,
            "min_clients": self.min_clients,
            "included": len(self.included),
            "dropped": {str(k): list(v) for k, v in sorted(self.dropped.items())},
            "counts": rows,
            "answer": {k: (None if math.isnan(v) else v) for k, v in self.answer.items()},
            "epsilon": self.epsilon,
            "delta": self.delta,
            "confidence": self.confidence,
            "devices_per_client": self.devices_per_client,
            "bits": self.bits,
        }
