"""``secagg.analytics.run``: answer a query over simulated clients with the real protocol."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.analytics.binding import (
    DEFAULT_MIN_CLIENTS,
    AnalyticsRound,
    Contributor,
    round_digest,
)
from secagg.analytics.privacy import DistributedDP
from secagg.analytics.query import Query, check_positive_int
from secagg.analytics.release import release, withheld
from secagg.analytics.result import AnalyticsResult
from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.crypto.ring import to_ring, word_dtype
from secagg.errors import ConfigError, RoundAbortedError
from secagg.protocol.config import Mode
from secagg.protocol.messages import Round
from secagg.reasons import AbortReason
from secagg.simulation.engine import SimulationResult, simulate

__all__ = ["run"]


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
    the round's spec (query, ``min_clients``, ``dp``) bound into the round config. The answer
    is released only when at least ``min_clients`` clients were included; otherwise the result
    says why and has no numbers.

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
    spec = AnalyticsRound(query, min_clients=floor, dp=dp, max_clients=max(n, floor))
    parties = [range(start, min(start + batch, n)) for start in range(0, n, batch)]
    if n < floor or len(parties) < 2:
        result = _too_few(spec, n)
        result.devices_per_client = batch
        return result
    rows = _party_rows(spec, devices, parties, seed)
    try:
        sim = simulate(
            rows,
            bits=spec.bits,
            dropout=dropout,
            dropout_round=dropout_round,
            seed=seed,
            mode=mode,
            degree=degree,
            threshold=threshold,
            workers=workers,
            progress=progress,
            context_digest=round_digest(spec),
        )
    except RoundAbortedError as exc:
        result = withheld(
            spec, [], {}, exc.reason, f"the secure round ended without a sum: {exc.detail}"
        )
        result.round_context_digest = round_digest(spec)
    else:
        result = _released(spec, sim, parties)
    result.devices_per_client = batch
    return result


def _too_few(spec: AnalyticsRound, n: int) -> AnalyticsResult:
    """The withheld result of a run with too few clients (or parties) for a round."""
    return withheld(
        spec,
        [],
        {},
        AbortReason.TOO_FEW_CONTRIBUTORS,
        f"{n} clients were asked; the release needs at least {spec.min_clients} (and the "
        "protocol at least 2 parties)",
    )


def _party_rows(
    spec: AnalyticsRound,
    devices: list[Sequence[Any]],
    parties: list[range],
    seed: int | bytes | str | None,
) -> npt.NDArray[Any]:
    """One ring vector per protocol client: its devices' capped, noised contributions summed."""
    rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed).fork("query")
    contributor = Contributor(spec, rng)
    rows = np.empty((len(parties), spec.query.dim), dtype=word_dtype(spec.bits))
    for p, members in enumerate(parties):
        acc = np.zeros(spec.query.dim, dtype=np.int64)
        for i in members:
            acc += contributor.raw(devices[i])
        rows[p] = to_ring(acc, spec.bits)
    return rows


def _released(spec: AnalyticsRound, sim: SimulationResult, parties: list[range]) -> AnalyticsResult:
    """The release of a completed round, its parties mapped back to devices."""
    included = [i for p in sim.included for i in parties[p]]
    dropped = {
        i: (d.round.label, d.reason.value) for p, d in sim.dropped.items() for i in parties[p]
    }
    result = release(spec, sim.total, included, dropped)
    result.round_context_digest = sim.config.context_digest
    return result
