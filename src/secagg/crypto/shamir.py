"""Shamir secret sharing of 32-byte secrets over GF(p), p = 2^31 - 1, vectorized with NumPy.

A secret is split into 16 little-endian 16-bit limbs; each limb is the constant term of its own
random polynomial of degree t - 1. A share is the evaluation point x (1 <= x < p) and the 16
field elements f_l(x). Products of two field elements fit in 62 bits, so uint64 arithmetic
reduced after every multiplication never overflows.

Reconstruction uses every share it is given: with more than t shares it checks that all lie on
one polynomial, and otherwise raises :class:`InconsistentSharesError` naming the points that
disagree with the polynomial most shares agree on (when that polynomial is unique).

:func:`split_secrets` and :func:`reconstruct_secrets` do the same for many secrets in one
vectorised pass (a server rebuilds one secret per client of a round); their results equal
those of the one-secret functions, which stay the reference.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from secagg.crypto._field import (
    _P,
    PRIME,
    U64,
    _barycentric_weights,
    _basis_rows,
    _batched_dot,
    _dot,
    _inv,
    _lagrange_at_zero_rows,
    _mulmod,
    _random_field,
    _reduce,
    _row_products,
)
from secagg.crypto.entropy import RandomSource, default_random
from secagg.errors import ConfigError, InconsistentSharesError, InsufficientSharesError, ShareError

__all__ = [
    "LIMBS",
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "Share",
    "reconstruct_secret",
    "reconstruct_secrets",
    "split_secret",
    "split_secrets",
]

SECRET_BYTES = 32
LIMBS = SECRET_BYTES // 2
SHARE_BYTES = 4 + 4 * LIMBS
_SHARE_STRUCT = struct.Struct(f"<{1 + LIMBS}I")
_set = object.__setattr__  # fills a frozen Share decoded without __init__
# How many candidate interpolation windows to try when looking for the majority polynomial.
_MAX_CANDIDATES = 32


@dataclass(frozen=True, slots=True)
class Share:
    """One share: evaluation point ``x`` and the 16 limb values (secret: never log them)."""

    x: int
    values: tuple[int, ...]
    # The canonical encoding, kept once known: batched reconstruction reads shares from it.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.x < PRIME:
            raise ShareError(f"share point must be in 1..{PRIME - 1}, got {self.x}")
        values = self.values
        if len(values) != LIMBS or min(values) < 0 or max(values) >= PRIME:
            raise ShareError(f"share must hold {LIMBS} field elements in 0..{PRIME - 1}")

    def to_bytes(self) -> bytes:
        """Canonical 68-byte encoding: x then the limbs, each little-endian uint32."""
        encoded = self._encoded
        if encoded is None:
            encoded = _SHARE_STRUCT.pack(self.x, *self.values)
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        """Parse :meth:`to_bytes` output, validating ranges."""
        if len(data) != SHARE_BYTES:
            raise ShareError(f"share encoding must be {SHARE_BYTES} bytes, got {len(data)}")
        words = _SHARE_STRUCT.unpack(data)
        x, values = words[0], words[1:]
        # The checks of __post_init__ (unsigned words are never negative), without its cost:
        # a server decodes one share per (dealer, holder) of a round.
        if not 1 <= x < PRIME:
            raise ShareError(f"share point must be in 1..{PRIME - 1}, got {x}")
        if max(values) >= PRIME:
            raise ShareError(f"share must hold {LIMBS} field elements in 0..{PRIME - 1}")
        share = object.__new__(cls)
        _set(share, "x", x)
        _set(share, "values", values)
        _set(share, "_encoded", bytes(data))
        return share

    def __repr__(self) -> str:
        return f"Share(x={self.x})"


def _secret_to_limbs(secret: bytes) -> U64:
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise ShareError(f"secret must be {SECRET_BYTES} bytes")
    return np.frombuffer(secret, dtype="<u2").astype(np.uint64)


def _limbs_to_secret(limbs: U64) -> bytes:
    if (limbs >= 1 << 16).any():
        raise InconsistentSharesError("reconstructed limbs are not 16-bit: shares are corrupt")
    return limbs.astype("<u2").tobytes()


def _check_threshold(threshold: int, count: int) -> None:
    if not 1 <= threshold <= count:
        raise ConfigError(f"threshold must be in 1..{count} (number of shares), got {threshold}")


def _check_points(points: Sequence[int]) -> None:
    if len(set(points)) != len(points):
        raise ShareError("share evaluation points must be distinct")
    for x in points:
        if not 1 <= x < PRIME:
            raise ShareError(f"share point must be in 1..{PRIME - 1}, got {x}")


def split_secret(
    secret: bytes, points: Sequence[int], threshold: int, rng: RandomSource | None = None
) -> list[Share]:
    """Split a 32-byte ``secret`` into one share per point; any ``threshold`` of them recover it."""
    return split_secrets([secret], points, threshold, rng)[0]


def split_secrets(
    secrets: Sequence[bytes],
    points: Sequence[int],
    threshold: int,
    rng: RandomSource | None = None,
) -> list[list[Share]]:
    """Split several 32-byte secrets over the same points in one pass.

    Equal to calling :func:`split_secret` on each secret in turn with the same ``rng`` (the
    random coefficients are drawn in the same order); only the evaluation is batched.
    """
    points = list(points)
    _check_points(points)
    _check_threshold(threshold, len(points))
    source = rng or default_random()
    # coeffs[j, s] holds the degree-j coefficients of secret s's 16 limb polynomials.
    coeffs = np.empty((threshold, len(secrets), LIMBS), dtype=np.uint64)
    for s, secret in enumerate(secrets):
        coeffs[0, s] = _secret_to_limbs(secret)
        if threshold > 1:
            coeffs[1:, s] = _random_field(source, (threshold - 1, LIMBS))
    xs = np.asarray(points, dtype=np.uint64)[None, :, None]
    acc = np.zeros((len(secrets), len(points), LIMBS), dtype=np.uint64)
    for j in range(threshold - 1, -1, -1):  # Horner, vectorized over secrets, points and limbs
        acc = _reduce(_mulmod(acc, xs) + coeffs[j][:, None, :])
    return [
        [Share(int(x), tuple(row)) for x, row in zip(points, rows, strict=True)]
        for rows in acc.astype(np.uint32).tolist()
    ]


class _Interpolant:
    """The polynomial through t shares, evaluated by the barycentric Lagrange formula."""

    def __init__(self, xs: U64, ys: U64) -> None:
        self.xs = xs
        self.ys = ys
        diff = _reduce(xs[:, None] + _P - xs[None, :])  # x_i - x_j
        np.fill_diagonal(diff, 1)
        self.weights = _inv(_row_products(diff))  # w_i = 1 / prod_{j != i} (x_i - x_j)


@functools.lru_cache(maxsize=64)
def _basis_at(nodes: tuple[int, ...], points: tuple[int, ...]) -> U64:
    """Matrix B with f(points) = B @ f(nodes) mod p (barycentric Lagrange).

    Cached: in a round every dealer's shares come from (nearly) the same holders, so the same
    node and point sets recur for every secret the server reconstructs.
    """
    xs = np.asarray(nodes, dtype=np.uint64)
    weights = _Interpolant(xs, xs).weights
    at = np.asarray(points, dtype=np.uint64)
    delta = _reduce(at[:, None] + _P - xs[None, :])  # x - x_i, never 0
    ell = _row_products(delta)  # l(x) = prod (x - x_i)
    basis = _mulmod(_mulmod(_inv(delta), weights[None, :]), ell[:, None])
    basis.setflags(write=False)
    return basis


@functools.lru_cache(maxsize=64)
def _lagrange_at_zero(nodes: tuple[int, ...]) -> U64:
    """Row vector lambda with f(0) = lambda @ f(nodes) mod p (cached like :func:`_basis_at`)."""
    xs = np.asarray(nodes, dtype=np.uint64)
    minus = _reduce(_P - xs)
    diff = _reduce(xs[:, None] + _P - xs[None, :])
    np.fill_diagonal(diff, 1)
    # lambda_i = prod_{j != i} x_j / (x_j - x_i) = prod_{j != i} (-x_j) / (x_i - x_j)
    num_all = np.tile(minus, (xs.size, 1))
    np.fill_diagonal(num_all, 1)
    lam = _mulmod(_row_products(num_all), _inv(_row_products(diff)))[None, :]
    lam.setflags(write=False)
    return lam


def _secret_limbs(xs: U64, ys: U64) -> U64:
    """f(0) for the polynomial through exactly these points (Lagrange at zero)."""
    if xs.size == 1:
        return np.array(ys[0], dtype=np.uint64)
    limbs: U64 = _dot(_lagrange_at_zero(tuple(int(x) for x in xs)), ys)[0]
    return limbs


def _agreement(xs: U64, ys: U64, window: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
    """Which shares agree with the polynomial through the shares at ``window``."""
    others = np.setdiff1d(np.arange(xs.size), window)
    agree = np.ones(xs.size, dtype=bool)
    if others.size:
        basis = _basis_at(tuple(int(x) for x in xs[window]), tuple(int(x) for x in xs[others]))
        agree[others] = (_dot(basis, ys[window]) == ys[others]).all(axis=1)
    return agree


def _locate_single_error(xs: U64, ys: U64) -> int | None:
    """Index of the one share off the polynomial, assuming exactly one is (needs m >= t + 2).

    With one error d at x_k, the interpolant through all m shares is f + d * L_k; since
    deg f <= m - 3, its two top coefficients come from d * L_k alone, which gives
    x_k = sum(w_i x_i y_i) / sum(w_i y_i) with w_i = 1 / prod_{j != i} (x_i - x_j).
    The answer is only a candidate: the caller verifies it.
    """
    weights = _Interpolant(xs, ys).weights
    lead = _dot(weights[None, :], ys)[0]
    nxt = _dot(_mulmod(weights, xs)[None, :], ys)[0]
    hit = lead != 0
    if not hit.any():
        return None
    located = _mulmod(nxt[hit], _inv(lead[hit]))
    index = np.flatnonzero(xs == located[0])
    if (located != located[0]).any() or index.size != 1:
        return None
    return int(index[0])


def reconstruct_secret(shares: Sequence[Share], threshold: int) -> bytes:
    """Recover the secret from at least ``threshold`` shares, checking any extra ones.

    Raises :class:`InsufficientSharesError` for too few shares and
    :class:`InconsistentSharesError` when the shares do not lie on one polynomial of degree
    ``threshold - 1``; its ``bad_points`` names the disagreeing points when it can tell: always
    for one bad share among at least ``threshold + 2`` shares; for ``e`` bad ones among at least
    ``threshold + 2e`` when some tried window of ``threshold`` shares avoids them all. Otherwise
    ``bad_points`` is empty. Shares are named only against a polynomial that more than
    ``(m + threshold - 1) / 2`` of the ``m`` shares agree on, which no other polynomial can match.
    """
    if threshold < 1:
        raise ConfigError(f"threshold must be >= 1, got {threshold}")
    if len(shares) < threshold:
        raise InsufficientSharesError(
            f"need at least {threshold} shares to reconstruct, got {len(shares)}"
        )
    _check_points([s.x for s in shares])
    m = len(shares)
    xs = np.fromiter((s.x for s in shares), dtype=np.uint64, count=m)
    ys = np.array([s.values for s in shares], dtype=np.uint64).reshape(m, LIMBS)
    window = np.arange(threshold)
    if m == threshold:
        return _limbs_to_secret(_secret_limbs(xs, ys))
    agree = _agreement(xs, ys, window)
    if agree.all():
        return _limbs_to_secret(_secret_limbs(xs[window], ys[window]))
    # Some share is off. Look for the polynomial a clear majority agrees with: two distinct
    # polynomials of degree < t share at most t - 1 points, so agreement by more than
    # (m + t - 1) / 2 shares makes it unique.
    bad_points: tuple[int, ...] = ()
    windows: list[npt.NDArray[np.intp]] = []
    if m >= threshold + 2:  # one bad share: locate it directly, then verify
        k = _locate_single_error(xs, ys)
        if k is not None:
            windows.append(np.delete(np.arange(m), k)[:threshold])
    candidates = min(m, _MAX_CANDIDATES)
    windows += [(np.arange(threshold) + (c * m) // candidates) % m for c in range(candidates)]
    for window in windows:
        agree = _agreement(xs, ys, window)
        if 2 * int(agree.sum()) > m + threshold - 1:
            bad_points = tuple(int(x) for x in xs[~agree])
            break
    raise InconsistentSharesError(
        f"{m} shares do not lie on one polynomial of degree {threshold - 1}"
        + (f"; disagreeing points: {list(bad_points)}" if bad_points else "; cannot tell which"),
        bad_points,
    )


# ---- many secrets at once --------------------------------------------------------------------

# Dealers per vectorised block: bounds the temporaries (~ block * m * 16 words) whatever n is.
_BATCH_DEALERS = 4096


def reconstruct_secrets(
    groups: Sequence[Sequence[Share]], threshold: int
) -> list[bytes | ShareError]:
    """Reconstruct one secret per group of shares in one vectorised pass.

    Element ``i`` is what ``reconstruct_secret(groups[i], threshold)`` returns, or the
    :class:`ShareError` it raises (too few, duplicate or inconsistent shares, with the same
    ``bad_points``). Groups of equal size are stacked; the interpolation coefficients are
    computed once per distinct set of evaluation points (in a complete graph every dealer has
    the same holders). Every share is checked as in :func:`reconstruct_secret`; a group that
    fails the batched check is handed to :func:`reconstruct_secret` to name its bad points.
    """
    if threshold < 1:
        raise ConfigError(f"threshold must be >= 1, got {threshold}")
    results: list[bytes | ShareError | None] = [None] * len(groups)
    by_size: dict[int, list[int]] = {}
    for i, shares in enumerate(groups):
        if len(shares) >= threshold:
            by_size.setdefault(len(shares), []).append(i)
    for m, members in by_size.items():
        for start in range(0, len(members), _BATCH_DEALERS):
            block = members[start : start + _BATCH_DEALERS]
            # One bytes join instead of 16 Python ints per share: rows of (x, limb_0..limb_15).
            encoded = b"".join(
                [share._encoded or share.to_bytes() for i in block for share in groups[i]]
            )
            rows = np.frombuffer(encoded, dtype="<u4").reshape(len(block), m, 1 + LIMBS)
            rows = rows.astype(np.uint64)
            ok, limbs = _reconstruct_block(rows[:, :, 0], rows[:, :, 1:], threshold)
            secrets = limbs.astype("<u2")
            for row in np.flatnonzero(ok).tolist():
                results[block[row]] = secrets[row].tobytes()
    out: list[bytes | ShareError] = []
    for i, got in enumerate(results):
        if got is None:  # the rare path: let the one-secret code raise the precise error
            try:
                got = reconstruct_secret(groups[i], threshold)
            except ShareError as exc:
                got = exc
        out.append(got)
    return out


def _reconstruct_block(xs: U64, ys: U64, t: int) -> tuple[npt.NDArray[np.bool_], U64]:
    """Secrets of G dealers with m shares each: (ok per dealer, limbs per dealer).

    ``ok`` is False where the points are not distinct, a share is off the polynomial through
    the others or a limb is not 16-bit: exactly the cases where :func:`reconstruct_secret`
    raises. Shares are sorted by point so equal holder sets compare equal.
    """
    g, m = xs.shape
    unsorted = np.flatnonzero((xs[:, 1:] <= xs[:, :-1]).any(axis=1))
    if unsorted.size:  # shares usually arrive sorted (or in one order for all dealers)
        order = np.argsort(xs[unsorted], axis=1, kind="stable")
        xs, ys = xs.copy(), ys.copy()
        xs[unsorted] = np.take_along_axis(xs[unsorted], order, axis=1)
        ys[unsorted] = np.take_along_axis(ys[unsorted], order[:, :, None], axis=1)
    ok = (xs[:, 1:] != xs[:, :-1]).all(axis=1)
    # Coefficients once per distinct holder set; rows with repeated points get garbage (a zero
    # difference has no inverse) but are not ok, so it is never used.
    holders, which = np.unique(xs, axis=0, return_inverse=True)
    which = which.reshape(g)
    window, rest = holders[:, :t], holders[:, t:]
    weights = _barycentric_weights(window)
    lam = _lagrange_at_zero_rows(window, weights)[which]
    limbs = _batched_dot(lam[:, None, :], ys[:, :t])[:, 0]
    if m > t:  # every share beyond the window must lie on the window's polynomial
        basis = _basis_rows(window, weights, rest)[which]
        predicted = _batched_dot(basis, ys[:, :t])
        ok &= (predicted == ys[:, t:]).all(axis=(1, 2))
    ok &= (limbs < 1 << 16).all(axis=1)
    return ok, limbs
