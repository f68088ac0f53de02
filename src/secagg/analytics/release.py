"""The server's side of the release rule: decode the ring sum, or release nothing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.analytics.binding import AnalyticsRound
from secagg.analytics.query import Label
from secagg.analytics.result import AnalyticsResult
from secagg.crypto.ring import decode_window
from secagg.reasons import AbortReason

__all__ = ["release", "withheld"]


def withheld(
    spec: AnalyticsRound, included: list[Any], dropped: dict[Any, Any], reason: str, detail: str
) -> AnalyticsResult:
    """A result with no numbers: ``reason`` says why."""
    return AnalyticsResult(
        query=spec.query,
        released=False,
        included=included,
        dropped=dropped,
        min_clients=spec.min_clients,
        reason=reason,
        detail=detail,
        bits=spec.bits,
        **_account(spec),
    )


def release(
    spec: AnalyticsRound,
    total: npt.ArrayLike,
    included: list[Any],
    dropped: dict[Any, Any],
    *,
    contributors: int | None = None,
) -> AnalyticsResult:
    """Decode ``total`` (the ring sum of the included clients) when at least ``min_clients``
    contributed (``contributors``, default ``len(included)``); otherwise withhold it."""
    count = len(included) if contributors is None else contributors
    if count < spec.min_clients:
        return withheld(
            spec,
            included,
            dropped,
            AbortReason.TOO_FEW_CONTRIBUTORS,
            f"only {count} clients contributed; the release needs at least {spec.min_clients}",
        )
    query = spec.query
    totals = decode_window(
        np.asarray(total, dtype=np.uint64), spec.bits, low=spec.window_low, shift=0
    )
    counts = query.decode(totals)
    variance = 0.0 if spec.noise is None else spec.noise.variance(count)
    stddev: dict[Label, float] = {}
    intervals: dict[Label, tuple[float, float]] = {}
    if spec.dp is not None:
        for label, scale in zip(query.labels, query.scales(), strict=True):
            sd = math.sqrt(variance) * scale
            stddev[label] = sd
            intervals[label] = (counts[label] - spec.dp.z * sd, counts[label] + spec.dp.z * sd)
    return AnalyticsResult(
        query=query,
        released=True,
        included=included,
        dropped=dropped,
        min_clients=spec.min_clients,
        counts=counts,
        answer=query.answer(counts, totals, variance),
        stddev=stddev,
        intervals=intervals,
        bits=spec.bits,
        round_context_digest=spec.digest(),
        **_account(spec),
    )


def _account(spec: AnalyticsRound) -> dict[str, Any]:
    dp = spec.dp
    return {
        "epsilon": None if dp is None else dp.epsilon,
        "delta": None if dp is None else dp.delta,
        "confidence": None if dp is None else dp.confidence,
    }
