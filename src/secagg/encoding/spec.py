"""EncodingSpec: the user's choices for turning float pytrees into ring vectors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from secagg.encoding.dp import DPConfig
from secagg.encoding.quantize import ClipMode, check_quant_bits
from secagg.errors import ConfigError

__all__ = ["EncodingSpec"]


@dataclass(frozen=True)
class EncodingSpec:
    """How clients encode their updates (every client and the decoder use the same spec).

    clip: half-width c of the per-coordinate range [-c, c] (``clip_mode="coordinate"``) or the
        L2 norm bound (``clip_mode="l2"``; coordinates are then also within [-c, c], which is
        the quantization range).
    quant_bits: q; [-c, c] maps onto the integers [0, 2^q] (1 <= q <= 48).
    weighted: FedAvg weighting. A client clips its update x to c, multiplies it by its weight
        0 <= w <= max_weight and encodes w * x over [-c * max_weight, c * max_weight]; the
        weight itself is an extra coordinate quantized over [0, max_weight]. The decoder learns
        only sum(w x) and sum(w) and returns weighted_mean = sum(w x) / sum(w).
    max_weight: the largest weight a client may send (required when weighted); it sets the
        quantization range of w * x, so the error of sum(w x) grows with it.
    report_clipping: clients also send their number of clipped coordinates and a 0/1 flag, so
        the decoder reports totals without learning which clients clipped.
    dp: distributed DP noise, or None.
    """

    clip: float
    quant_bits: int = 16
    clip_mode: ClipMode = "coordinate"
    weighted: bool = False
    max_weight: float | None = None
    report_clipping: bool = False
    dp: DPConfig | None = None

    def __post_init__(self) -> None:
        if not _positive_finite(self.clip):
            raise ConfigError(f"clip must be finite and > 0, got {self.clip!r}")
        check_quant_bits(self.quant_bits)
        if self.clip_mode not in ("coordinate", "l2"):
            raise ConfigError(f"clip_mode must be 'coordinate' or 'l2', got {self.clip_mode!r}")
        if not isinstance(self.weighted, bool) or not isinstance(self.report_clipping, bool):
            raise ConfigError("weighted and report_clipping must be booleans")
        if self.weighted:
            if self.max_weight is None:
                raise ConfigError(
                    "weighted=True needs max_weight, the largest weight a client may send "
                    "(it sets the quantization range of weight * value)"
                )
            if not _positive_finite(self.max_weight):
                raise ConfigError(f"max_weight must be finite and > 0, got {self.max_weight!r}")
        elif self.max_weight is not None:
            raise ConfigError("max_weight is only meaningful with weighted=True")
        if self.dp is not None and not isinstance(self.dp, DPConfig):
            raise ConfigError(f"dp must be a DPConfig or None, got {type(self.dp).__name__}")

    @property
    def value_range(self) -> float:
        """Half-width of the quantization range of the encoded values: c, or c * max_weight."""
        if self.weighted and self.max_weight is not None:
            return float(self.clip) * float(self.max_weight)
        return float(self.clip)


def _positive_finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0
