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

from secagg.encoding import Encoder
from secagg.encoding.announce import ENCODING_KIND, flat_template
from secagg.round_spec import RoundSpec
from secagg.transport.server import RoundReport

__all__ = ["DECODED_FILE", "write_decoded"]

DECODED_FILE = "decoded.npz"


def write_decoded(output: Path, spec: bytes, report: RoundReport) -> dict[str, Any] | None:
    """Decode the round's sum with its announced spec into OUTPUT/decoded.npz; a JSON summary.

    Returns None (and writes nothing) for raw or non-encoding rounds and rounds without a sum.
    """
    if not spec or report.total is None or not report.included:
        return None
    announced = RoundSpec.decode(spec)
    if announced.kind != ENCODING_KIND:
        return None
    encoder = Encoder.from_round_spec(announced, flat_template(announced))
    res = encoder.decode(report.total, len(report.included), spec_digest=report.spec_digest)
    summary: dict[str, Any] = {
        "file": DECODED_FILE,
        "n_included": res.n_included,
        "error_bound": res.error_bound,
    }
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
    np.savez(output / DECODED_FILE, **arrays)  # type: ignore[arg-type]
    summary["arrays"] = sorted(arrays)
    if res.clipped_coordinates is not None:
        summary["clipped_coordinates"] = res.clipped_coordinates
        summary["clients_clipped"] = res.clients_clipped
    return summary
