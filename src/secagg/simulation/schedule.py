"""Who drops when in a simulated round: a rate or an explicit ``{client: round}`` mapping."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from secagg.crypto.entropy import RandomSource
from secagg.errors import ConfigError
from secagg.protocol.driver import Schedule
from secagg.protocol.messages import Round

__all__ = ["Dropout", "dropout_schedule"]

Dropout = float | Mapping[int, int | str | Round]


def dropout_schedule(
    n: int, dropout: Dropout, dropout_round: int | str | Round | None, rng: RandomSource
) -> Schedule:
    """The driver's schedule (1-based client indices) for ``simulate``'s 0-based arguments.

    A rate drops that fraction of clients, chosen uniformly, at ``dropout_round`` or at a
    random round each when it is None.
    """
    if isinstance(dropout, Mapping):
        stops = {}
        for client, round_ in dropout.items():
            if isinstance(client, bool) or not isinstance(client, int) or not 0 <= client < n:
                raise ConfigError(
                    f"dropout schedule names client {client!r}; clients are 0..{n - 1}"
                )
            stops[client + 1] = Round.parse(round_)
        return Schedule(stops)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float | np.floating):
        raise ConfigError(
            f"dropout must be a fraction in [0, 1] or a {{client: round}} mapping, got {dropout!r}"
        )
    rate = float(dropout)
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"dropout rate must be in [0, 1], got {dropout}")
    count = round(rate * n)
    # Choose `count` clients uniformly (partial Fisher-Yates over CSPRNG draws).
    order = list(range(n))
    for i in range(count):
        j = i + _below(rng, n - i)
        order[i], order[j] = order[j], order[i]
    fixed = None if dropout_round is None else Round.parse(dropout_round)
    return Schedule(
        {c + 1: fixed if fixed is not None else Round(_below(rng, 5)) for c in order[:count]}
    )


def _below(rng: RandomSource, bound: int) -> int:
    """Uniform integer in [0, bound) by rejection sampling."""
    limit = (1 << 64) - (1 << 64) % bound
    while True:
        x = int.from_bytes(rng.random_bytes(8), "little")
        if x < limit:
            return x % bound
