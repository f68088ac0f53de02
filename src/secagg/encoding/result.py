"""DecodedResult: what the decoder learns from one ring total."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from secagg.encoding.pytree import PyTree, TreeDef, unflatten
from secagg.errors import EncodingError

__all__ = ["DecodedResult"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DecodedResult:
    """The decoded aggregate of ``n_included`` clients; each field means one thing.

    An unweighted round sums the clients' inputs x: ``sum`` = sum(x) and ``mean`` = sum(x) /
    n_included. A weighted round sums w * x and w (the server never sees x alone):
    ``weighted_sum`` = sum(w x), ``total_weight`` = sum(w) and ``weighted_mean`` = sum(w x) /
    sum(w) (None when total_weight <= 0). Asking a weighted result for ``sum``/``mean`` (or an
    unweighted one for the weighted fields) raises :class:`EncodingError`: that statistic was
    not aggregated. Trees have the structure, dtypes and devices of the template; ``*_flat``
    are the same values as float64 vectors.

    Error bounds hold per coordinate against the same statistic of the clipped inputs, exclude
    DP noise, and are worst-case (not probabilistic): ``error_bound`` (for ``sum``, or for
    ``weighted_sum``) is n_included / scale * (1 + 2^(q-50)), i.e. below one quantum per
    client plus float64 rounding; ``mean_error_bound`` is that divided by n_included;
    ``weighted_mean_error_bound`` is (error_bound + clip * total_weight_error_bound) /
    total_weight.

    ``noise_stddev`` is the standard deviation of the DP noise in the decoded sum (float units;
    the noise of n_included clients), ``noise_stddev_quantized`` the same in quanta, and
    ``dp_target_met`` whether n_included >= min_clients, i.e. whether it reaches the target.
    """

    total: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]
    n_included: int
    bits: int
    weighted: bool
    treedef: TreeDef
    aggregate: PyTree
    aggregate_flat: FloatArray
    error_bound: float
    weighted_mean_value: PyTree | None = None
    weighted_mean_value_flat: FloatArray | None = None
    weighted_mean_bound: float | None = None
    total_weight_value: float | None = None
    total_weight_bound: float | None = None
    clipped_coordinates: int | None = None
    clients_clipped: int | None = None
    noise_stddev: float | None = None
    noise_stddev_quantized: float | None = None
    dp_target_met: bool | None = None

    def _unweighted(self, name: str) -> None:
        if self.weighted:
            raise EncodingError(
                f"{name} is not available: this round was weighted, so the clients sent w * x "
                "and the server learned only sum(w x) and sum(w); use weighted_sum, "
                "total_weight or weighted_mean"
            )

    def _weighted(self, name: str) -> None:
        if not self.weighted:
            raise EncodingError(
                f"{name} is not available: this round was not weighted (no weights were "
                "aggregated); use sum or mean"
            )

    @property
    def sum(self) -> PyTree:
        """sum(x) over the included clients (unweighted rounds only)."""
        self._unweighted("sum")
        return self.aggregate

    @property
    def sum_flat(self) -> FloatArray:
        """``sum`` as a float64 vector (unweighted rounds only)."""
        self._unweighted("sum_flat")
        return self.aggregate_flat

    @property
    def mean(self) -> PyTree:
        """sum(x) / n_included (unweighted rounds only)."""
        self._unweighted("mean")
        return unflatten(self.treedef, self.aggregate_flat / self.n_included)

    @property
    def mean_flat(self) -> FloatArray:
        """``mean`` as a float64 vector (unweighted rounds only)."""
        self._unweighted("mean_flat")
        return self.aggregate_flat / self.n_included

    @property
    def mean_error_bound(self) -> float:
        """Per-coordinate bound on the error of ``mean`` (unweighted rounds only)."""
        self._unweighted("mean_error_bound")
        return self.error_bound / self.n_included

    @property
    def weighted_sum(self) -> PyTree:
        """sum(w x) over the included clients (weighted rounds only)."""
        self._weighted("weighted_sum")
        return self.aggregate

    @property
    def weighted_sum_flat(self) -> FloatArray:
        """``weighted_sum`` as a float64 vector (weighted rounds only)."""
        self._weighted("weighted_sum_flat")
        return self.aggregate_flat

    @property
    def total_weight(self) -> float:
        """sum(w) over the included clients (weighted rounds only)."""
        self._weighted("total_weight")
        assert self.total_weight_value is not None
        return self.total_weight_value

    @property
    def total_weight_error_bound(self) -> float:
        """Bound on the error of ``total_weight`` (weighted rounds only)."""
        self._weighted("total_weight_error_bound")
        assert self.total_weight_bound is not None
        return self.total_weight_bound

    @property
    def weighted_mean(self) -> PyTree | None:
        """sum(w x) / sum(w), or None when total_weight <= 0 (weighted rounds only)."""
        self._weighted("weighted_mean")
        return self.weighted_mean_value

    @property
    def weighted_mean_flat(self) -> FloatArray | None:
        """``weighted_mean`` as a float64 vector (weighted rounds only)."""
        self._weighted("weighted_mean_flat")
        return self.weighted_mean_value_flat

    @property
    def weighted_mean_error_bound(self) -> float | None:
        """Per-coordinate bound on the error of ``weighted_mean`` (weighted rounds only)."""
        self._weighted("weighted_mean_error_bound")
        return self.weighted_mean_bound
