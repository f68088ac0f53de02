"""The neighbour graph of a round and the safe (degree, threshold) parameter finder."""

from secagg.graph.harary import NeighbourGraph
from secagg.graph.params import (
    MODELS,
    MODES,
    GraphParameters,
    Mode,
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
    "check_parameters",
    "evaluate_parameters",
    "find_parameters",
    "threshold_bounds",
]
