"""Arithmetic in GF(p), p = 2^31 - 1, on NumPy uint64 arrays (the field of Shamir sharing).

Elements are kept reduced (< p), so the product of two fits in 62 bits and uint64 arithmetic
reduced after every multiplication never overflows. Private to the crypto package.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import RandomSource

PRIME = 2**31 - 1
_P = np.uint64(PRIME)
_SHIFT = np.uint64(31)

U64 = npt.NDArray[np.uint64]


def _reduce(x: U64) -> U64:
    """``x mod p`` in place, for any uint64 ``x`` (``x`` must be a temporary).

    p = 2^31 - 1, so 2^31 = 1 (mod p): folding the high bits onto the low ones twice leaves
    x <= p + 8, and one conditional subtraction finishes. Several times faster than NumPy's
    uint64 ``%``, which divides.
    """
    high = x >> _SHIFT
    np.bitwise_and(x, _P, out=x)
    x += high
    np.right_shift(x, _SHIFT, out=high)
    np.bitwise_and(x, _P, out=x)
    x += high
    np.minimum(x, x - _P, out=x)  # x - p wraps around (huge) unless x >= p
    return x


def _mulmod(a: U64, b: U64 | np.uint64) -> U64:
    return _reduce(np.multiply(a, b))


def _random_field(rng: RandomSource, shape: tuple[int, ...]) -> U64:
    """Uniform elements of GF(p): 31 random bits, redrawing the one value p itself."""
    count = int(np.prod(shape))
    raw = np.frombuffer(rng.random_bytes(4 * count), dtype=np.uint32) & np.uint32(PRIME)
    out = raw.astype(np.uint64)
    bad = out == _P
    while bad.any():
        fresh = np.frombuffer(rng.random_bytes(4 * int(bad.sum())), dtype=np.uint32)
        out[bad] = (fresh & np.uint32(PRIME)).astype(np.uint64)
        bad = out == _P
    return out.reshape(shape)


def _inv(values: U64) -> U64:
    """Elementwise modular inverse by Fermat: values^(p-2), square and multiply."""
    result = np.ones_like(values)
    base = _reduce(values.copy())
    exponent = PRIME - 2
    while exponent:
        if exponent & 1:
            result = _mulmod(result, base)
        base = _mulmod(base, base)
        exponent >>= 1
    return result


def _row_products(matrix: U64) -> U64:
    """Product mod p along the last axis."""
    acc = matrix[..., 0].copy()
    for j in range(1, matrix.shape[-1]):
        acc = _mulmod(acc, matrix[..., j])
    return acc


def _dot(weights: U64, values: U64) -> U64:
    """(weights @ values) mod p without overflow: split weights into 16-bit halves."""
    lo = weights & np.uint64(0xFFFF)
    hi = weights >> np.uint64(16)
    # Each partial product is < 2^47; summing up to 2^17 of them stays below 2^64.
    out = np.zeros((weights.shape[0], values.shape[1]), dtype=np.uint64)
    step = 1 << 16
    for s in range(0, weights.shape[1], step):
        v = values[s : s + step]
        part_lo = _reduce(lo[:, s : s + step] @ v)
        part_hi = _reduce(hi[:, s : s + step] @ v)
        out = _reduce(out + part_lo + _mulmod(part_hi, np.uint64(1 << 16)))
    return out


def _batch_inv(values: U64) -> U64:
    """Inverses along the last axis (Montgomery's trick: one Fermat inversion per row)."""
    n = values.shape[-1]
    prefix = np.empty_like(values)
    prefix[..., 0] = values[..., 0]
    for j in range(1, n):
        prefix[..., j] = _mulmod(prefix[..., j - 1], values[..., j])
    running = _inv(prefix[..., -1])  # 1 / (v_0 ... v_j), walking j down
    out = np.empty_like(values)
    for j in range(n - 1, 0, -1):
        out[..., j] = _mulmod(running, prefix[..., j - 1])
        running = _mulmod(running, values[..., j])
    out[..., 0] = running
    return out


def _barycentric_weights(nodes: U64) -> U64:
    """Per row of nodes (U, t): w_i = 1 / prod_{j != i} (x_i - x_j)."""
    diff = _reduce(nodes[:, :, None] + _P - nodes[:, None, :])
    index = np.arange(nodes.shape[1])
    diff[:, index, index] = 1
    return _batch_inv(_row_products(diff))


def _products_without_each(factors: U64) -> U64:
    """out[..., i] = prod_{j != i} factors[..., j], from prefix and suffix products."""
    n = factors.shape[-1]
    before = np.ones_like(factors)
    after = np.ones_like(factors)
    for i in range(1, n):
        before[..., i] = _mulmod(before[..., i - 1], factors[..., i - 1])
        after[..., n - 1 - i] = _mulmod(after[..., n - i], factors[..., n - i])
    return _mulmod(before, after)


def _lagrange_at_zero_rows(nodes: U64, weights: U64) -> U64:
    """Per row: lambda with f(0) = sum_i lambda_i f(x_i); lambda_i = w_i prod_{j != i} (-x_j)."""
    return _mulmod(_products_without_each(_reduce(_P - nodes)), weights)


def _basis_rows(nodes: U64, weights: U64, points: U64) -> U64:
    """Per row: B (U, r, t) with f(points) = B @ f(nodes); B[a, i] = w_i prod_{j != i} (p_a - x_j).

    No inversion per point: the numerators are prefix and suffix products.
    """
    delta = _reduce(points[:, :, None] + _P - nodes[:, None, :])  # (U, r, t)
    return _mulmod(_products_without_each(delta), weights[:, None, :])


def _batched_dot(weights: U64, values: U64) -> U64:
    """(weights @ values) mod p per row: (G, r, t) @ (G, t, L), 16-bit halves as in _dot.

    Each product of a half (< 2^16) and a value (< 2^31) is below 2^47, so sums of up to 64
    of them are integers below 2^53, exact in float64: BLAS does the matrix products (several
    times faster than NumPy's integer matmul), 64 terms at a time.
    """
    lo = (weights & np.uint64(0xFFFF)).astype(np.float64)
    hi = (weights >> np.uint64(16)).astype(np.float64)
    floats = values.astype(np.float64)
    out = np.zeros((weights.shape[0], weights.shape[1], values.shape[2]), dtype=np.uint64)
    step = 64
    for s in range(0, weights.shape[2], step):
        v = floats[:, s : s + step]
        part_lo = _reduce(np.matmul(lo[:, :, s : s + step], v).astype(np.uint64))
        part_hi = _reduce(np.matmul(hi[:, :, s : s + step], v).astype(np.uint64))
        out = _reduce(out + part_lo + _mulmod(part_hi, np.uint64(1 << 16)))
    return out
