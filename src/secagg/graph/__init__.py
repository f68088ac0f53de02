"""The neighbour graph of a round and the safe (degree, threshold) parameter finder."""

from secagg.graph.harary import NeighbourGraph
from secagg.graph.mode import MODES, Mode, check_mode
from secagg.graph.params import (
    MODELS,
    GraphParameters,
    ParameterModel,
    check_parameters,
    evaluate_parameters,
    find_parameters,
    threshold_bounds,
)

__all__ = [
    "MODELS",
    "MODES",
    "GraphParameters",
    "Mode",
    "NeighbourGraph",
    "ParameterModel",
    "check_mode",
    "check_parameters",
    "evaluate_parameters",
    "find_parameters",
    "threshold_bounds",
]
