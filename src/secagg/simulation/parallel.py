"""The process pool the simulator uses; it lives in :mod:`secagg.parallel.pool`, shared with the
network server (kept here so ``secagg.simulation.parallel`` imports keep working)."""

from secagg.parallel.pool import MaskPool, add_many_parallel, mask_inputs_parallel, slice_bounds

__all__ = ["MaskPool", "add_many_parallel", "mask_inputs_parallel", "slice_bounds"]
