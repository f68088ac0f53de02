"""Histograms over a known domain, and the group-by form (counts per tuple of keys)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from secagg.analytics.caps import cap_counts
from secagg.analytics.query import IntArray, Label, Query, check_positive_int
from secagg.crypto.entropy import RandomSource
from secagg.errors import ConfigError

__all__ = ["GroupBy", "Histogram"]

Item = str | int


def _check_item(where: str, item: object) -> Item:
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise ConfigError(f"{where} items must be strings or integers, got {item!r}")
    return item


def _check_domain(where: str, items: object) -> tuple[Item, ...]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence) or not items:
        raise ConfigError(f"{where} must be a non-empty list of strings or integers")
    domain = tuple(_check_item(where, item) for item in items)
    if len(set(domain)) != len(domain):
        raise ConfigError(f"{where} lists an item twice")
    return domain


def _l2_of_cap(max_contributions: int, max_per_item: int) -> float:
    """Largest L2 norm of a vector with entries <= p summing to <= m: full items, then the rest."""
    full, rest = divmod(max_contributions, max_per_item)
    return math.sqrt(full * max_per_item**2 + rest**2)


class _Counting(Query):
    """Counts over a fixed list of labels, each client capped (shared by Histogram, GroupBy)."""

    max_contributions: int
    max_per_item: int

    def _set_caps(self, max_contributions: int, max_per_item: int | None) -> None:
        self.max_contributions = check_positive_int("max_contributions", max_contributions)
        per_item = self.max_contributions if max_per_item is None else max_per_item
        per_item = check_positive_int("max_per_item", per_item)
        self.max_per_item = min(per_item, self.max_contributions)

    @property
    def dim(self) -> int:
        return len(self.labels)

    def coordinate_bounds(self) -> tuple[int, int]:
        return 0, self.max_per_item

    @property
    def l1_sensitivity(self) -> float:
        return float(self.max_contributions)

    @property
    def l2_sensitivity(self) -> float:
        return _l2_of_cap(self.max_contributions, self.max_per_item)

    def _index(self) -> dict[Hashable, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def _key(self, value: Any) -> Hashable | None:
        return value if isinstance(value, str | int) and not isinstance(value, bool) else None

    def encode(self, values: Sequence[Any], rng: RandomSource | None = None) -> IntArray:
        """Counts of the client's in-domain values, capped (values outside the domain ignored)."""
        index = self._index()
        keys = (self._key(v) for v in values)
        capped = cap_counts(
            (k if k in index else None for k in keys), self.max_contributions, self.max_per_item
        )
        vector = np.zeros(self.dim, dtype=np.int64)
        for key, count in capped.items():
            vector[index[key]] = count
        return vector

    def decode(self, totals: IntArray) -> dict[Label, float]:
        return {label: float(totals[i]) for i, label in enumerate(self.labels)}


class Histogram(_Counting):
    """How many times each item of ``domain`` was reported.

    A client counts at most ``max_contributions`` times in total and at most ``max_per_item``
    times per item (default: ``max_contributions``); values outside the domain are ignored.
    """

    type_name = "histogram"

    def __init__(
        self,
        domain: Sequence[Item],
        max_contributions: int = 1,
        max_per_item: int | None = None,
    ) -> None:
        self.domain = _check_domain("domain", domain)
        self._set_caps(max_contributions, max_per_item)

    @property
    def labels(self) -> tuple[Label, ...]:
        return self.domain

    def params(self) -> dict[str, Any]:
        return {
            "domain": list(self.domain),
            "max_contributions": self.max_contributions,
            "max_per_item": self.max_per_item,
        }


class GroupBy(_Counting):
    """Counts per combination of keys, e.g. per (app version, category).

    ``dimensions`` is an ordered list of (name, allowed values). A client's value is a tuple
    (or list) in that order, or a mapping name -> value; combinations with a value outside
    its list are ignored. Caps as in :class:`Histogram`.
    """

    type_name = "group_by"

    def __init__(
        self,
        dimensions: Sequence[tuple[str, Sequence[Item]]] | Mapping[str, Sequence[Item]],
        max_contributions: int = 1,
        max_per_item: int | None = None,
    ) -> None:
        pairs = list(dimensions.items()) if isinstance(dimensions, Mapping) else list(dimensions)
        if not pairs:
            raise ConfigError("group_by needs at least one dimension")
        checked: list[tuple[str, tuple[Item, ...]]] = []
        for pair in pairs:
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ConfigError(f"each dimension must be (name, values), got {pair!r}")
            name, values = pair
            if not isinstance(name, str) or not name:
                raise ConfigError(f"dimension names must be non-empty strings, got {name!r}")
            checked.append((name, _check_domain(f"dimension {name!r}", values)))
        if len({name for name, _ in checked}) != len(checked):
            raise ConfigError("group_by names a dimension twice")
        self.dimensions = tuple(checked)
        self._labels: tuple[Label, ...] = tuple(
            itertools.product(*(values for _, values in self.dimensions))
        )
        self._set_caps(max_contributions, max_per_item)

    @property
    def names(self) -> tuple[str, ...]:
        """The dimension names, in order."""
        return tuple(name for name, _ in self.dimensions)

    @property
    def labels(self) -> tuple[Label, ...]:
        return self._labels

    def _key(self, value: Any) -> Hashable | None:
        if isinstance(value, Mapping):
            if set(value) != set(self.names):
                return None
            value = [value[name] for name in self.names]
        if (
            isinstance(value, str)
            or not isinstance(value, Sequence)
            or len(value) != len(self.dimensions)
        ):
            return None
        key = tuple(value)
        if any(isinstance(v, bool) or not isinstance(v, str | int) for v in key):
            return None
        return key

    def params(self) -> dict[str, Any]:
        return {
            "dimensions": [[name, list(values)] for name, values in self.dimensions],
            "max_contributions": self.max_contributions,
            "max_per_item": self.max_per_item,
        }
