"""Contribution caps: how many times one client may count towards the answer."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

__all__ = ["cap_counts"]


def cap_counts(
    keys: Iterable[Hashable | None], max_contributions: int, max_per_item: int
) -> dict[Hashable, int]:
    """Each key's capped count: at most ``max_per_item`` each, ``max_contributions`` in total.

    ``None`` keys (values outside the domain) are skipped. When the total cap binds, the
    client's most frequent keys are kept first, ties in order of first appearance: a
    deterministic function of the client's own data, so the cap costs no privacy.
    """
    counts: dict[Hashable, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    budget = max_contributions
    capped: dict[Hashable, int] = {}
    # sorted() is stable: equal counts stay in first-seen (insertion) order.
    for key in sorted(counts, key=lambda k: -counts[k]):
        if budget == 0:
            break
        take = min(counts[key], max_per_item, budget)
        capped[key] = take
        budget -= take
    return capped
