"""DecodedResult: what the decoder learns from one ring total."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from secagg.encoding.pytree import PyTree

__all__ = ["DecodedResult"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DecodedResult:
    """The decoded aggregate of ``n_included`` clients.

    ``sum`` and ``mean`` (= sum / n_included) have the structure, dtypes and devices of the
    template; ``*_flat`` are the same values as float64 vectors. With a weighted spec ``sum`` is
    sum(w x), and ``weighted_mean`` = sum(w x) / total_weight (None if total_weight <= 0).

    Error bounds hold per coordinate against the same statistic of the clipped inputs, exclude
    DP noise, and are worst-case (not probabilistic): ``error_bound`` for ``sum`` is
    n_included / scale * (1 + 2^(q-50)), i.e. below one quantum per client plus float64
    rounding; ``mean_error_bound`` is that divided by n_included; ``weighted_mean_error_bound``
    is (error_bound + clip * total_weight_error_bound) / total_weight.

    ``noise_stddev`` is the standard deviation of the DP noise in ``sum`` (float units; the
    noise of n_included clients), ``noise_stddev_quantized`` the same in quanta, and
    ``dp_target_met`` whether n_included >= min_clients, i.e. whether it reaches the target.
    """

    total: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]
    n_included: int
    bits: int
    sum: PyTree
    mean: PyTree
    sum_flat: FloatArray
    mean_flat: FloatArray
    error_bound: float
    mean_error_bound: float
    weighted_mean: PyTree | None = None
    weighted_mean_flat: FloatArray | None = None
    weighted_mean_error_bound: float | None = None
    total_weight: float | None = None
    total_weight_error_bound: float | None = None
    clipped_coordinates: int | None = None
    clients_clipped: int | None = None
    noise_stddev: float | None = None
    noise_stddev_quantized: float | None = None
    dp_target_met: bool | None = None
