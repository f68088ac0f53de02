"""Layout: where the values and the extra coordinates sit in a ring vector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """Positions in the ring vector: values first, then weight, clip-count limbs, clip flag.

    The clipped-coordinate count of one client is at most ``value_dim``; it travels as
    little-endian limbs of ``count_limb_bits`` bits, chosen so n_clients limbs of maximal value
    still sum without wrapping at the round's b. That keeps b set by the values alone.
    """

    value_dim: int
    weight: int | None
    clip_count: slice | None
    clip_flag: int | None
    count_limb_bits: int
    dim: int

    @classmethod
    def build(
        cls, *, value_dim: int, weighted: bool, report_clipping: bool, count_limb_bits: int
    ) -> Layout:
        """Layout for ``value_dim`` values and the chosen extras."""
        pos = value_dim
        weight = None
        if weighted:
            weight, pos = pos, pos + 1
        clip_count = clip_flag = None
        if report_clipping:
            limbs = -(-max(1, value_dim.bit_length()) // count_limb_bits)
            clip_count, pos = slice(pos, pos + limbs), pos + limbs
            clip_flag, pos = pos, pos + 1
        return cls(value_dim, weight, clip_count, clip_flag, count_limb_bits, pos)

    @property
    def values(self) -> slice:
        """The quantized value coordinates."""
        return slice(0, self.value_dim)

    @property
    def extra_dim(self) -> int:
        """Number of extra coordinates after the values."""
        return self.dim - self.value_dim

    def split_count(self, count: int) -> npt.NDArray[np.int64]:
        """A count as little-endian limbs of ``count_limb_bits`` bits."""
        assert self.clip_count is not None
        n_limbs = self.clip_count.stop - self.clip_count.start
        limb_mask = (1 << self.count_limb_bits) - 1
        shifts = range(0, n_limbs * self.count_limb_bits, self.count_limb_bits)
        return np.array([(count >> s) & limb_mask for s in shifts], dtype=np.int64)

    def join_count(self, limbs: npt.NDArray[np.uint64]) -> int:
        """The integer whose limbs (each possibly a sum of many clients' limbs) are given."""
        return sum(int(v) << (i * self.count_limb_bits) for i, v in enumerate(limbs.tolist()))
