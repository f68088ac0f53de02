"""Encoder: one client's float pytree to a ring vector, and a ring total back to floats.

Ring vector layout (``Encoder.layout``), all entries mod 2^b in ``Encoder.dtype``:

====================  =========================================================================
``layout.values``     the value_dim quantized coordinates (+ DP noise), flattening order
``layout.weight``     weighted specs: the weight quantized over [0, max_weight] to [0, 2^q]
``layout.clip_count`` report_clipping: the client's number of clipped coordinates, split into
                      little-endian limbs of ``layout.count_limb_bits`` bits each
``layout.clip_flag``  report_clipping: 1 if the client clipped anything, else 0
====================  =========================================================================

Every client and the decoder build the Encoder from the same spec, template structure and
``n_clients`` (the most clients a round may sum, which fixes b). The decoder is told how many
clients the total contains, ``n_included``, by the round (its surviving set), since the
quantization offsets and error bound scale with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.ring import (
    RingArray,
    as_ring_total,
    decode_window,
    narrow,
    to_ring,
    word_dtype,
)
from secagg.encoding.announce import encoding_fields, spec_from_fields
from secagg.encoding.bitwidth import check_n_clients, choose_bits, limb_bits
from secagg.encoding.dp import SkellamNoise, calibrate_skellam
from secagg.encoding.layout import Layout
from secagg.encoding.pytree import PyTree, TreeDef, flatten, unflatten
from secagg.encoding.quantize import Quantizer, clip_values
from secagg.encoding.result import DecodedResult
from secagg.encoding.round_spec import RoundSpec
from secagg.encoding.spec import EncodingSpec
from secagg.errors import ConfigError, EncodingError, SpecMismatchError

__all__ = ["Encoder"]

FloatArray = npt.NDArray[np.float64]


class Encoder:
    """Encodes client pytrees into ring vectors and decodes their sum, for one spec and tree.

    ``template`` is a pytree shaped like every client's input (its values are ignored) or its
    :class:`TreeDef`. ``n_clients`` is the largest number of clients whose vectors may be
    summed. ``bits`` forces the ring width; one that could wrap is refused with
    :class:`EncodingError`. Without it the smallest safe b is chosen.
    """

    def __init__(
        self,
        spec: EncodingSpec,
        template: PyTree | TreeDef,
        n_clients: int,
        *,
        bits: int | None = None,
    ) -> None:
        if not isinstance(spec, EncodingSpec):
            raise ConfigError(f"spec must be an EncodingSpec, got {type(spec).__name__}")
        self.spec = spec
        self.treedef = template if isinstance(template, TreeDef) else flatten(template)[1]
        if self.treedef.size == 0:
            raise EncodingError("template has no coordinates to encode")
        self.n_clients = check_n_clients(n_clients)
        self.quantizer = Quantizer.symmetric(spec.value_range, spec.quant_bits)
        self.weight_quantizer = (
            Quantizer.nonnegative(float(spec.max_weight), spec.quant_bits)
            if spec.weighted and spec.max_weight is not None
            else None
        )
        self.noise: SkellamNoise | None = None
        self.noise_headroom = 0
        if spec.dp is not None:
            if spec.dp.min_clients > self.n_clients:
                raise ConfigError(
                    f"dp.min_clients={spec.dp.min_clients} exceeds n_clients={self.n_clients}: "
                    "the noise target could never be met"
                )
            self.noise = calibrate_skellam(spec.dp, self.quantizer.scale)
            self.noise_headroom = self.noise.headroom(self.n_clients, spec.dp.wrap_log2)
        self.bits = choose_bits(
            self.n_clients, spec.quant_bits, noise_headroom=self.noise_headroom, bits=bits
        )
        self.layout = Layout.build(
            value_dim=self.treedef.size,
            weighted=spec.weighted,
            report_clipping=spec.report_clipping,
            count_limb_bits=limb_bits(self.bits, self.n_clients),
        )

    @classmethod
    def from_round_spec(cls, announced: bytes | RoundSpec, template: PyTree | TreeDef) -> Encoder:
        """The Encoder a round announced (``Welcome.spec``), for vectors shaped like ``template``.

        Raises :class:`ConfigError` for a spec that is not an encoding spec and
        :class:`SpecMismatchError` when ``template`` does not fill the announced dimension.
        """
        parsed = announced if isinstance(announced, RoundSpec) else RoundSpec.decode(announced)
        spec, sizes = spec_from_fields(parsed)
        encoder = cls(spec, template, sizes["n_clients"], bits=sizes["bits"])
        if encoder.dim != sizes["dim"]:
            raise SpecMismatchError(
                f"the round's vectors have D={sizes['dim']}; this template encodes to "
                f"D={encoder.dim}"
            )
        return encoder

    @property
    def round_spec(self) -> RoundSpec:
        """What this encoder's vectors mean, as the round announces it (kind ``"encoding"``)."""
        return encoding_fields(self.spec, bits=self.bits, n_clients=self.n_clients, dim=self.dim)

    @property
    def spec_digest(self) -> bytes:
        """The digest a round carries in its config when it sums this encoder's vectors."""
        return self.round_spec.digest

    def check_round_spec(self, round_spec_digest: bytes) -> None:
        """Raise :class:`SpecMismatchError` unless the round's spec digest is this encoder's."""
        if round_spec_digest != self.spec_digest:
            raise SpecMismatchError(
                "the round's spec digest differs from this encoder's spec: its vectors were "
                "encoded with other settings (clip, quant_bits, weights, DP, bits or D); decode "
                "with Encoder.from_round_spec(<the round's announced spec>, template)"
            )

    @property
    def dim(self) -> int:
        """D, the ring vector length (values plus extra coordinates)."""
        return self.layout.dim

    @property
    def dtype(self) -> np.dtype[np.uint32] | np.dtype[np.uint64]:
        """Word type of ring vectors: uint32 for b <= 32, else uint64."""
        return word_dtype(self.bits)

    @property
    def scale(self) -> float:
        """Quanta per float unit of the encoded values."""
        return self.quantizer.scale

    def encode(
        self,
        tree: PyTree,
        *,
        weight: float | None = None,
        rng: RandomSource | None = None,
    ) -> RingArray:
        """One client's ring vector for ``tree`` (and ``weight`` with a weighted spec).

        ``rng`` drives stochastic rounding and DP noise (default: the system CSPRNG; pass a
        :class:`~secagg.crypto.entropy.DeterministicRandom` for reproducible simulations).
        """
        rng = default_random() if rng is None else rng
        spec = self.spec
        x, treedef = flatten(tree)
        if treedef.signature != self.treedef.signature:
            raise EncodingError(
                f"input structure differs from the encoder's template (template: "
                f"{self.treedef.num_leaves} leaves, {self.treedef.size} coordinates; input: "
                f"{treedef.num_leaves} leaves, {treedef.size} coordinates, or other keys/shapes)"
            )
        clipped, n_clipped = clip_values(x, spec.clip, spec.clip_mode)
        out = np.zeros(self.dim, dtype=np.int64)
        if self.weight_quantizer is not None:
            w = self._check_weight(weight)
            clipped *= w  # FedAvg: the server must learn sum(w x), so the client weights x
            out[self.layout.weight] = self.weight_quantizer.quantize(np.array([w]), rng)[0]
        elif weight is not None:
            raise EncodingError("weight given but the spec is not weighted")
        values = self.quantizer.quantize(clipped, rng)
        if self.noise is not None:
            values += self.noise.sample(values.size, rng)
        out[self.layout.values] = values
        if self.layout.clip_count is not None and self.layout.clip_flag is not None:
            out[self.layout.clip_count] = self.layout.split_count(n_clipped)
            out[self.layout.clip_flag] = int(n_clipped > 0)
        return to_ring(out, self.bits)

    def _check_weight(self, weight: float | None) -> float:
        max_weight = self.spec.max_weight
        if weight is None:
            raise EncodingError("the spec is weighted: encode() needs weight=")
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise EncodingError(f"weight must be a number, got {type(weight).__name__}") from None
        if not (np.isfinite(w) and max_weight is not None and 0.0 <= w <= max_weight):
            # The weight is client data: state the allowed range, not the value.
            raise EncodingError(f"weight must be finite and in [0, max_weight={max_weight}]")
        return w

    def decode(
        self, total: npt.ArrayLike, n_included: int, *, spec_digest: bytes | None = None
    ) -> DecodedResult:
        """Decode the ring sum of exactly ``n_included`` clients' vectors.

        ``spec_digest`` is the round's (``RoundConfig.spec_digest``, ``RoundReport.spec_digest``):
        given, a sum encoded with another spec raises :class:`SpecMismatchError` instead of
        decoding to wrong numbers. Leave it out only for vectors summed outside a round.

        ``total`` has shape ``(dim,)`` with entries in [0, 2^b) (uint32/uint64 or any integer
        dtype). ``n_included`` (1 <= n_included <= n_clients) must be the number of clients the
        round actually summed; a wrong count shifts every coordinate by zero_point / scale.
        """
        if spec_digest is not None:
            self.check_round_spec(spec_digest)
        if isinstance(n_included, bool) or not isinstance(n_included, int | np.integer):
            raise EncodingError(f"n_included must be an integer, got {type(n_included).__name__}")
        n = int(n_included)
        if not 1 <= n <= self.n_clients:
            raise EncodingError(
                f"n_included={n} outside 1..{self.n_clients} (n_clients the bit width b="
                f"{self.bits} was chosen for)"
            )
        wide = as_ring_total(total, self.bits, self.dim)
        layout, q = self.layout, self.quantizer
        centred = decode_window(
            wide[layout.values], self.bits, low=self.noise_headroom, shift=n * q.zero_point
        )
        sum_flat = q.dequantize(centred)
        error_bound = q.sum_error_bound(n)
        weighted = self._decode_weight(wide, n, sum_flat, error_bound)
        clipped_coordinates = clients_clipped = None
        if layout.clip_count is not None and layout.clip_flag is not None:
            clipped_coordinates = layout.join_count(wide[layout.clip_count])
            clients_clipped = int(wide[layout.clip_flag])
        noise_stddev = noise_quanta = target_met = None
        if self.noise is not None and self.spec.dp is not None:
            noise_quanta = self.noise.aggregate_stddev(n)
            noise_stddev = noise_quanta / q.scale
            target_met = n >= self.spec.dp.min_clients
        return DecodedResult(
            total=narrow(wide, self.bits),
            n_included=n,
            bits=self.bits,
            weighted=self.spec.weighted,
            treedef=self.treedef,
            aggregate=unflatten(self.treedef, sum_flat),
            aggregate_flat=sum_flat,
            error_bound=error_bound,
            weighted_mean_value=weighted.mean,
            weighted_mean_value_flat=weighted.mean_flat,
            weighted_mean_bound=weighted.mean_error_bound,
            total_weight_value=weighted.total,
            total_weight_bound=weighted.total_error_bound,
            clipped_coordinates=clipped_coordinates,
            clients_clipped=clients_clipped,
            noise_stddev=noise_stddev,
            noise_stddev_quantized=noise_quanta,
            dp_target_met=target_met,
        )

    def _decode_weight(
        self, wide: npt.NDArray[np.uint64], n: int, sum_flat: FloatArray, error_bound: float
    ) -> _Weighted:
        wq, index = self.weight_quantizer, self.layout.weight
        if wq is None or index is None:
            return _Weighted()
        # The weight coordinate carries no noise and lies in [0, n 2^q]: window [0, 2^b).
        weight_sum = decode_window(wide[index : index + 1], self.bits, low=0, shift=0)
        total = float(wq.dequantize(weight_sum)[0])
        total_bound = wq.sum_error_bound(n)
        if total <= 0.0:
            return _Weighted(total=total, total_error_bound=total_bound)
        mean_flat = sum_flat / total
        # |a'/w' - a/w| = |e_a - (a/w) e_w| / w' and |a/w| <= clip per coordinate.
        return _Weighted(
            mean=unflatten(self.treedef, mean_flat),
            mean_flat=mean_flat,
            mean_error_bound=(error_bound + self.spec.clip * total_bound) / total,
            total=total,
            total_error_bound=total_bound,
        )


@dataclass(frozen=True)
class _Weighted:
    mean: PyTree | None = None
    mean_flat: FloatArray | None = None
    mean_error_bound: float | None = None
    total: float | None = None
    total_error_bound: float | None = None
