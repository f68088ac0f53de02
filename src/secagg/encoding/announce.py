"""An Encoder's round spec (kind ``"encoding"``): what its ring vectors mean, for the round.

Fields (see :mod:`secagg.encoding.round_spec` for the canonical encoding): ``clip``, ``quant_bits``,
``clip_mode``, ``weighted``, ``max_weight`` (null unless weighted), ``report_clipping``,
``dp`` (null or ``{"noise_stddev", "min_clients", "mechanism", "wrap_log2"}``), ``bits`` (b),
``n_clients`` (the most clients b was chosen for) and ``dim`` (D, the ring vector length).
Floats are written as floats (``1.0``, never ``1``) so equal specs have one encoding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from secagg.encoding.dp import DPConfig
from secagg.encoding.round_spec import RoundSpec
from secagg.encoding.spec import EncodingSpec
from secagg.errors import ConfigError

__all__ = ["ENCODING_KIND", "encoding_fields", "flat_template", "spec_from_fields"]

ENCODING_KIND = "encoding"
_KEYS = frozenset(
    {"clip", "quant_bits", "clip_mode", "weighted", "max_weight", "report_clipping", "dp"}
    | {"bits", "n_clients", "dim"}
)


def encoding_fields(spec: EncodingSpec, *, bits: int, n_clients: int, dim: int) -> RoundSpec:
    """The round spec of vectors encoded with ``spec`` into a ring of ``bits`` bits."""
    dp = spec.dp
    return RoundSpec(
        ENCODING_KIND,
        {
            "clip": float(spec.clip),
            "quant_bits": int(spec.quant_bits),
            "clip_mode": str(spec.clip_mode),
            "weighted": bool(spec.weighted),
            "max_weight": None if spec.max_weight is None else float(spec.max_weight),
            "report_clipping": bool(spec.report_clipping),
            "dp": None
            if dp is None
            else {
                "noise_stddev": float(dp.noise_stddev),
                "min_clients": int(dp.min_clients),
                "mechanism": str(dp.mechanism),
                "wrap_log2": int(dp.wrap_log2),
            },
            "bits": int(bits),
            "n_clients": int(n_clients),
            "dim": int(dim),
        },
    )


def spec_from_fields(round_spec: RoundSpec) -> tuple[EncodingSpec, dict[str, int]]:
    """The EncodingSpec and ``{"bits", "n_clients", "dim"}`` of an ``"encoding"`` round spec."""
    if round_spec.kind != ENCODING_KIND:
        raise ConfigError(f"the round's spec is of kind {round_spec.kind!r}, not 'encoding'")
    fields: dict[str, Any] = dict(round_spec.fields)
    if set(fields) != _KEYS:
        missing, extra = sorted(_KEYS - set(fields)), sorted(set(fields) - _KEYS)
        raise ConfigError(f"encoding spec fields: missing {missing}, unknown {extra}")
    dp = fields["dp"]
    try:
        spec = EncodingSpec(
            clip=fields["clip"],
            quant_bits=fields["quant_bits"],
            clip_mode=fields["clip_mode"],
            weighted=fields["weighted"],
            max_weight=fields["max_weight"],
            report_clipping=fields["report_clipping"],
            dp=None if dp is None else DPConfig(**dp),
        )
    except TypeError as exc:  # a dp object with unknown keys
        raise ConfigError(f"encoding spec dp: {exc}") from None
    sizes = {}
    for key in ("bits", "n_clients", "dim"):
        value = fields[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"encoding spec {key} must be a positive integer, got {value!r}")
        sizes[key] = value
    return spec, sizes


def flat_template(round_spec: RoundSpec) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A flat float64 template whose encoding fills the spec's D (for decoding without the
    clients' tree structure: the values come out as one vector in flattening order)."""
    spec, sizes = spec_from_fields(round_spec)
    from secagg.encoding.encoder import Encoder  # the encoder module imports this one

    extras = Encoder(spec, np.zeros(1), sizes["n_clients"], bits=sizes["bits"]).dim - 1
    if sizes["dim"] <= extras:
        raise ConfigError(f"encoding spec dim={sizes['dim']} leaves no value coordinates")
    return np.zeros(sizes["dim"] - extras)
