"""``secagg.analytics.run``: answer a query over simulated clients with the real protocol."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from secagg.analytics.binding import Contributor, round_digest
from secagg.analytics.privacy import DistributedDP, plan_noise
from secagg.analytics.query import Label, Query, check_positive_int
from secagg.analytics.result import AnalyticsResult
from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.encoding.ring import decode_window, to_ring, word_dtype
from secagg.errors import ConfigError, RoundAbortedError
from secagg.protocol.config import Mode
from secagg.protocol.messages import Round
from secagg.reasons import AbortReason
from secagg.simulation import simulate

__all__ = ["DEFAULT_MIN_CLIENTS", "run"]

#: Default release threshold: no answer from fewer contributing clients.
DEFAULT_MIN_CLIENTS = 10


def run(
    query: Query,
    per_client_values: Sequence[Sequence[Any]],
    *,
    min_clients: int = DEFAULT_MIN_CLIENTS,
    dp: DistributedDP | None = None,
    dropout: float | Mapping[int, int | str | Round] = 0.0,
    dropout_round: int | str | Round | None = None,
    seed: int | bytes | str | None = None,
    devices_per_client: int = 1,
    mode: Mode = "semi-honest",
    degree: int | None = None,
    threshold: int | None = None,
    workers: int = 1,
    progress: Callable[[str, int], None] | None = None,
) -> AnalyticsResult:
    """Answer ``query`` over one list of raw values per client, through a real secure round.

    Each client encodes its values (contributions capped by the query), adds its share of the
    DP noise when ``dp`` is given (sized so that ``min_clients`` contributors already carry the
    promised noise; see :mod:`secagg.analytics.privacy`), and the round sums the vectors with
    the query's digest bound into the round config. The answer is released only when at least
    ``min_clients`` clients were included; otherwise the result says why and has no numbers.

    ``devices_per_client`` > 1 (simulation only) lets one protocol client carry the summed
    vectors of that many consecutive devices, each still capped and noised on its own: the
    sum is the same, the round is cheaper, and a dropout then drops a whole batch.
    ``dropout``/``dropout_round``/``seed``/``mode``/``degree``/``threshold``/``workers`` are as
    in :func:`secagg.simulate` and apply to protocol clients.
    """
    if not isinstance(query, Query):
        raise ConfigError(f"query must be a secagg.analytics query, got {type(query).__name__}")
    devices = list(per_client_values)
    n = len(devices)
    floor = check_positive_int("min_clients", min_clients)
    batch = check_positive_int("devices_per_client", devices_per_client)
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed).fork("query")
    plan = None if dp is None else plan_noise(dp, query.l1_sensitivity, query.l2_sensitivity, floor)
    headroom = 0 if plan is None or dp is None else plan.headroom(n, dp.wrap_log2)
    base: dict[str, Any] = {
        "query": query,
        "min_clients": floor,
        "devices_per_client": batch,
        "epsilon": None if dp is None else dp.epsilon,
        "delta": None if dp is None else dp.delta,
        "confidence": None if dp is None else dp.confidence,
    }
    parties = [range(start, min(start + batch, n)) for start in range(0, n, batch)]
    if n < floor or len(parties) < 2:
        return AnalyticsResult(
            released=False,
            included=[],
            dropped={},
            reason=AbortReason.TOO_FEW_CONTRIBUTORS,
            detail=f"{n} clients were asked; the release needs at least {floor} (and the "
            "protocol at least 2 parties)",
            **base,
        )
    bits = query.bits(n, headroom)
    contributor = Contributor(query, rng)
    noise = None if plan is None else plan.per_client
    rows = np.empty((len(parties), query.dim), dtype=word_dtype(bits))
    for p, members in enumerate(parties):
        acc = np.zeros(query.dim, dtype=np.int64)
        for i in members:
            acc += contributor.raw(devices[i], noise=noise)
        rows[p] = to_ring(acc, bits)
    try:
        sim = simulate(
            rows,
            bits=bits,
            dropout=dropout,
            dropout_round=dropout_round,
            seed=seed,
            mode=mode,
            degree=degree,
            threshold=threshold,
            workers=workers,
            progress=progress,
            context_digest=round_digest(query),
        )
    except RoundAbortedError as exc:
        return AnalyticsResult(
            released=False,
            included=[],
            dropped={},
            reason=exc.reason,
            detail=f"the secure round ended without a sum: {exc.detail}",
            bits=bits,
            **base,
        )
    base["round_context_digest"] = sim.config.context_digest
    included = [i for p in sim.included for i in parties[p]]
    dropped = {i: where for p, where in sim.dropped.items() for i in parties[p]}
    if len(included) < floor:
        return AnalyticsResult(
            released=False,
            included=included,
            dropped=dropped,
            reason=AbortReason.TOO_FEW_CONTRIBUTORS,
            detail=f"only {len(included)} clients contributed; the release needs {floor}",
            bits=bits,
            **base,
        )
    totals = decode_window(
        np.asarray(sim.total, dtype=np.uint64), bits, low=query.window_low(n, headroom), shift=0
    )
    counts = query.decode(totals)
    variance = 0.0 if plan is None else plan.variance(len(included))
    stddev: dict[Label, float] = {}
    intervals: dict[Label, tuple[float, float]] = {}
    if dp is not None:
        for label, scale in zip(query.labels, query.scales(), strict=True):
            sd = math.sqrt(variance) * scale
            stddev[label] = sd
            intervals[label] = (counts[label] - dp.z * sd, counts[label] + dp.z * sd)
    return AnalyticsResult(
        released=True,
        included=included,
        dropped=dropped,
        counts=counts,
        answer=query.answer(counts, totals, variance),
        stddev=stddev,
        intervals=intervals,
        bits=bits,
        **base,
    )
