"""What ``secagg serve --spec`` writes beside sum.npy for an encoding round: the decoded floats.

``decoded.npz`` holds flat float64 vectors (the clients' tree structure is theirs, not the
server's): ``sum`` and ``mean`` for an unweighted round; ``weighted_sum``, ``total_weight``
and, when the total weight is positive, ``weighted_mean`` for a weighted one. A weighted round
never aggregated sum(x), so no ``sum``/``mean`` is written for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.encoding import Encoder
from secagg.encoding.announce import ENCODING_KIND, flat_template
from secagg.encoding.round_spec import RoundSpec
from secagg.transport.server import RoundReport

__all__ = ["DECODED_FILE", "decoded_arrays", "write_decoded"]

DECODED_FILE = "decoded.npz"

Arrays = dict[str, npt.NDArray[np.float64]]


def decoded_arrays(report: RoundReport) -> tuple[Arrays, dict[str, Any]] | None:
    """The round's sum decoded with its announced spec: the arrays and a JSON summary.

    None for raw or non-encoding rounds and rounds without a sum.
    """
    if not report.spec or report.total is None or not report.included:
        return None
    announced = RoundSpec.decode(report.spec)
    if announced.kind != ENCODING_KIND:
        return None
    res = report.decode(Encoder.from_round_spec(announced, flat_template(announced)))
    summary: dict[str, Any] = {
        "file": DECODED_FILE,
        "round": report.round,
        "n_included": res.n_included,
        "error_bound": res.error_bound,
    }
    arrays: Arrays
    if res.weighted:
        arrays = {
            "weighted_sum": res.weighted_sum_flat,
            "total_weight": np.array([res.total_weight]),
        }
        if res.weighted_mean_flat is not None:
            arrays["weighted_mean"] = res.weighted_mean_flat
        summary["total_weight"] = res.total_weight
        summary["weighted_mean_error_bound"] = res.weighted_mean_error_bound
    else:
        arrays = {"sum": res.sum_flat, "mean": res.mean_flat}
        summary["mean_error_bound"] = res.mean_error_bound
    summary["arrays"] = sorted(arrays)
    if res.clipped_coordinates is not None:
        summary["clipped_coordinates"] = res.clipped_coordinates
        summary["clients_clipped"] = res.clients_clipped
    return arrays, summary


def write_decoded(output: Path, report: RoundReport) -> dict[str, Any] | None:
    """:func:`decoded_arrays` written to OUTPUT/decoded.npz; returns the summary (or None)."""
    decoded = decoded_arrays(report)
    if decoded is None:
        return None
    arrays, summary = decoded
    np.savez(output / DECODED_FILE, **arrays)  # type: ignore[arg-type]
    return summary
