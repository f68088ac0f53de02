"""In-process simulation of whole rounds (``simulate``); its process pool for the server's
unmasking is :mod:`secagg.parallel.pool` (shared with the network server)."""

from secagg.simulation.engine import PhaseTiming, SimulationResult, simulate

__all__ = ["PhaseTiming", "SimulationResult", "simulate"]
