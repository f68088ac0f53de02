"""In-process simulation of whole rounds (``simulate``) and its process pool for the server's
unmasking (:mod:`secagg.simulation.parallel`)."""

from secagg.simulation.engine import PhaseTiming, SimulationResult, simulate

__all__ = ["PhaseTiming", "SimulationResult", "simulate"]
