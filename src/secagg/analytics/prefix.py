"""Heavy hitters from an open domain by a prefix tree over several secure rounds.

Round l asks a :class:`Histogram` over every surviving prefix of length l - 1 extended by one
symbol of ``alphabet``, plus the prefix itself marked as a complete item (``prefix + END``).
Each client reports one item (its most frequent), as its prefix of length l. Prefixes whose
released count reaches ``threshold`` survive to the next round; complete items that reach it
are heavy hitters. Without noise the result is exact: a prefix is at least as frequent as any
of its extensions, so pruning never loses an item whose count reaches the threshold.

With DP each round is a separate release with ``dp``; the whole discovery is then, by basic
composition, (rounds * epsilon, rounds * delta)-DP, reported in the result (pass a per-round
target of total / ``max_length`` to stay within a total budget). Noise makes absent
candidates cross a low threshold: set it several of a round's reported stddevs above zero
(each round's :class:`AnalyticsResult` carries its stddev).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from secagg.analytics.binding import DEFAULT_MIN_CLIENTS
from secagg.analytics.caps import cap_counts
from secagg.analytics.histogram import Histogram
from secagg.analytics.privacy import DistributedDP
from secagg.analytics.query import check_positive_int
from secagg.analytics.result import AnalyticsResult
from secagg.analytics.run import run
from secagg.errors import ConfigError

__all__ = ["END", "HeavyHitters", "discover_heavy_hitters"]

#: Marks a complete item in a round's domain (so "car" and a prefix of "cart" differ).
END = "\u0000"
_MAX_DOMAIN = 1 << 16


@dataclass
class HeavyHitters:
    """Items whose released count reached the threshold, and the rounds that found them.

    ``epsilon``/``delta`` are the total over the rounds that ran (None without DP).
    """

    items: dict[str, float]
    rounds: list[AnalyticsResult] = field(default_factory=list)
    epsilon: float | None = None
    delta: float | None = None
    stopped: str = ""


def _one_item(items: Sequence[Any]) -> str | None:
    """A client's most frequent string item (ties: first seen), or None."""
    kept = cap_counts((v if isinstance(v, str) else None for v in items), 1, 1)
    return next((str(item) for item in kept), None)


def discover_heavy_hitters(
    per_client_items: Sequence[Sequence[Any]],
    *,
    alphabet: str,
    threshold: float,
    max_length: int,
    min_clients: int = DEFAULT_MIN_CLIENTS,
    dp: DistributedDP | None = None,
    seed: int | None = None,
    runner: Callable[..., AnalyticsResult] = run,
    **run_options: Any,
) -> HeavyHitters:
    """Find the items (strings over ``alphabet``, at most ``max_length`` long) that at least
    ``threshold`` clients report, with one secure round per prefix length.

    ``run_options`` (``dropout``, ``devices_per_client``, ...) go to each round's
    :func:`~secagg.analytics.run`.
    """
    symbols = list(dict.fromkeys(alphabet))
    if not symbols or END in symbols:
        raise ConfigError("alphabet must be a non-empty string without the END marker")
    check_positive_int("max_length", max_length)
    if not threshold > 0:
        raise ConfigError(f"threshold must be > 0, got {threshold}")
    items = [_one_item(values) for values in per_client_items]
    found: dict[str, float] = {}
    rounds: list[AnalyticsResult] = []
    survivors = [""]
    stopped = "no prefix left above the threshold"
    for length in range(1, max_length + 2):
        domain = [p + END for p in survivors if p]
        if length <= max_length:
            domain += [p + s for p in survivors for s in symbols]
        if not domain:
            break
        if len(domain) > _MAX_DOMAIN:
            stopped = f"round {length}: {len(domain)} candidates exceed {_MAX_DOMAIN}"
            break
        values = [[_prefix(item, length)] if item is not None else [] for item in items]
        result = runner(
            Histogram(domain=domain, max_contributions=1),
            values,
            min_clients=min_clients,
            dp=dp,
            seed=None if seed is None else seed * 1000 + length,
            **run_options,
        )
        rounds.append(result)
        if not result.released:
            stopped = f"round {length} released nothing ({result.reason})"
            break
        above = [str(label) for label, count in result.counts.items() if count >= threshold]
        found.update({lab[:-1]: result.counts[lab] for lab in above if lab.endswith(END)})
        survivors = [lab for lab in above if not lab.endswith(END)]
        if not survivors:
            break
    epsilon = None if dp is None else dp.epsilon * len(rounds)
    delta = None if dp is None else dp.delta * len(rounds)
    return HeavyHitters(found, rounds, epsilon, delta, stopped)


def _prefix(item: str, length: int) -> str:
    """What a client reports in round ``length``: a proper prefix, or the item + END."""
    return item[:length] if len(item) >= length else (item + END if len(item) == length - 1 else "")
