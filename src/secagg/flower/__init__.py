"""Secure aggregation for Flower apps (Message API, flwr 1.42): a client mod and a Grid wrapper.

Two lines turn a Flower app's FedAvg-family training into secure aggregation::

    app = ClientApp(mods=[secagg_mod])                       # client side
    strategy.start(grid=SecAggGrid(grid, clip=0.5), ...)      # server side (ServerApp main)

The protocol's steps travel as ``train`` messages that :func:`secagg_mod` intercepts (a
ClientApp that registered only ``train`` works unchanged); the strategy receives one reply
holding the securely aggregated weighted mean. Requires the ``flower`` extra
(``pip install 'secagg[flower]'``); ``import secagg`` never imports Flower.
"""

from __future__ import annotations

try:
    import flwr  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "secagg.flower needs Flower: pip install 'secagg[flower]' (flwr[simulation] 1.42)"
    ) from exc

from secagg.flower.grid import FlowerRoundReport, SecAggGrid
from secagg.flower.mod import make_secagg_mod, secagg_mod
from secagg.flower.strategies import check_strategy

__all__ = ["FlowerRoundReport", "SecAggGrid", "check_strategy", "make_secagg_mod", "secagg_mod"]
