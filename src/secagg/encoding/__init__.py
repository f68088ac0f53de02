"""Float <-> ring encoding for secure aggregation.

Clients clip and quantize float pytrees (NumPy arrays, PyTorch tensors, dicts/lists/tuples of
them) into vectors of integers mod 2^b; the secure round sums them; the decoder turns the ring
total back into the float sum, mean and weighted mean, with clipping totals and optional
distributed-DP (Skellam) noise. The bit width is chosen (or checked) so the sum cannot wrap.

Typical use::

    spec = EncodingSpec(clip=1.0, quant_bits=16, weighted=True, max_weight=1000.0)
    enc = Encoder(spec, template=model_delta, n_clients=100)   # b = enc.bits, D = enc.dim
    vector = enc.encode(delta, weight=n_examples)               # on each client
    result = enc.decode(ring_total, n_included=len(survivors))  # on the server
    result.weighted_mean, result.error_bound, result.total_weight
"""

from secagg.crypto.ring import decode_window, ring_sum, to_ring, word_dtype
from secagg.encoding.bitwidth import MAX_BITS, choose_bits, limb_bits, required_bits
from secagg.encoding.dp import (
    DPConfig,
    SkellamNoise,
    calibrate_skellam,
    sample_poisson,
    skellam_tail_bound,
)
from secagg.encoding.encoder import Encoder
from secagg.encoding.layout import Layout
from secagg.encoding.pytree import PyTree, TreeDef, flatten, unflatten
from secagg.encoding.quantize import (
    MAX_QUANT_BITS,
    ClipMode,
    Quantizer,
    clip_values,
    stochastic_round,
    uniform01,
)
from secagg.encoding.result import DecodedResult
from secagg.encoding.spec import EncodingSpec

__all__ = [
    "MAX_BITS",
    "MAX_QUANT_BITS",
    "ClipMode",
    "DPConfig",
    "DecodedResult",
    "Encoder",
    "EncodingSpec",
    "Layout",
    "PyTree",
    "Quantizer",
    "SkellamNoise",
    "TreeDef",
    "calibrate_skellam",
    "choose_bits",
    "clip_values",
    "decode_window",
    "flatten",
    "limb_bits",
    "required_bits",
    "ring_sum",
    "sample_poisson",
    "skellam_tail_bound",
    "stochastic_round",
    "to_ring",
    "unflatten",
    "uniform01",
    "word_dtype",
]
