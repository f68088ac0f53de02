"""The neighbour graph of a round and the safe (degree, threshold) parameter finder."""

from secagg.graph.harary import NeighbourGraph
from secagg.graph.params import (
    MODES,
    GraphParameters,
    Mode,
    check_parameters,
    find_parameters,
    threshold_bounds,
)

__all__ = [
    "MODES",
    "GraphParameters",
    "Mode",
    "NeighbourGraph",
    "check_parameters",
    "find_parameters",
    "threshold_bounds",
]
