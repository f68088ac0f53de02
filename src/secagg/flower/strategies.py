"""Which Flower strategies can run on one securely aggregated reply.

A strategy whose ``aggregate_train`` is FedAvg's weighted mean (or starts from it, as FedAvgM
and the FedOpt family do) gets the same result from one reply holding the secure weighted mean
as from every client's reply. Strategies that look at individual updates (median, trimmed mean,
Krum, Bulyan, q-FedAvg, XGBoost bagging, server-side DP clipping) cannot: secure aggregation
exists so that nobody sees those. Checked against flwr 1.42.
"""

from __future__ import annotations

import inspect
from typing import Any

from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedAvg, FedAvgM, FedYogi, Strategy

from secagg.errors import UnsupportedStrategyError

__all__ = ["SUPPORTED", "calling_strategy", "check_strategy"]

# The aggregate_train implementations that reduce to (or start from) the weighted mean.
SUPPORTED = (FedAvg, FedAvgM, FedAdagrad, FedAdam, FedYogi)
_MEAN_BASED = frozenset(cls.__dict__["aggregate_train"] for cls in SUPPORTED)


def check_strategy(strategy: object) -> None:
    """Raise :class:`UnsupportedStrategyError` unless ``strategy`` aggregates by weighted mean.

    FedProx and other subclasses that inherit one of the supported ``aggregate_train``
    methods unchanged pass; any override (the user's own included) is refused, since this
    check cannot tell whether it needs the individual replies.
    """
    if not isinstance(strategy, Strategy):
        raise UnsupportedStrategyError(
            f"{type(strategy).__name__} is not a flwr.serverapp.strategy.Strategy"
        )
    method = getattr(type(strategy), "aggregate_train", None)
    func = getattr(method, "__func__", method)
    if func not in _MEAN_BASED:
        owner = next(
            (c.__name__ for c in type(strategy).__mro__ if "aggregate_train" in c.__dict__),
            "?",
        )
        raise UnsupportedStrategyError(
            f"{type(strategy).__name__} aggregates training replies with {owner}."
            "aggregate_train, which needs each client's update; secure aggregation hands the "
            "strategy only the weighted mean. Supported: FedAvg, FedAvgM, FedProx, FedAdagrad, "
            "FedAdam, FedYogi (and subclasses that keep their aggregate_train)"
        )


def calling_strategy() -> Any | None:
    """The strategy whose ``start()`` is on the call stack (the ``self`` of that frame)."""
    frame = inspect.currentframe()
    start_code = Strategy.start.__code__
    try:
        while frame is not None:
            if frame.f_code is start_code:
                return frame.f_locals.get("self")
            frame = frame.f_back
        return None
    finally:
        del frame
