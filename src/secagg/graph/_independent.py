"""The independent-draws model of corrupt and dropped clients (the finder's default).

Each client is corrupt with probability gamma and drops out with probability delta,
independently of each other client and of the graph seed; this is how a fleet of devices
behaves, and unlike fixed counts (floor(0.05 n) = 0 for n = 10) it never rounds a risk away.
The number of corrupt (or dropped) clients among a client's k neighbours is then
Binomial(k, gamma) (or Binomial(k, delta)), exactly. The bounds:

Sparse graph (Harary ring of degree k on a random permutation):

- privacy fails if (a) the honest survivors' ring falls apart, which needs two disjoint runs
  of k/2 consecutive clients that are corrupt or dropped: each client is one of those with
  probability at most gamma + delta (whatever the correlation between the two), so a given
  pair of runs is all bad with probability at most (gamma + delta)^k, union bound over the
  n(n - k - 1)/2 pairs; or (b) some honest client has enough corrupt neighbours to rebuild a
  secret of its (t in semi-honest mode, 2t - (k + 1) in malicious mode: params.py explains
  why), union bound over n clients. Each event gets half of the 2^-privacy_bits budget.
- correctness fails if a secret that must be rebuilt has fewer than t live holders: a dropped
  client's mask key is held by its live neighbours, a survivor's self-mask seed by itself and
  its live neighbours. Per client that is
  delta P[Bin(k, delta) >= k - t + 1] + (1 - delta) P[Bin(k, delta) >= k - t + 2], exactly;
  union bound over n clients.

Complete graph (k = n - 1), where nothing is left to a union bound over runs:

- every honest client's corrupt neighbours are all C corrupt clients, so privacy fails
  exactly when bar <= C while at least two clients are honest (if all others are corrupt, the
  sum alone is the last client's input, in any aggregation protocol):
  P[bar <= Bin(n, gamma) <= n - 2], not a bound.
- correctness fails exactly when more than n - t clients drop: every secret's live holders
  are then the n - D survivors. P[Bin(n, delta) >= n - t + 1], not a bound.
"""

from __future__ import annotations

import functools
import math

from secagg.graph._binomial import BinomialTails
from secagg.graph._common import LN2, log2_union, min_threshold, next_degree
from secagg.graph._connect import first_connected_degree
from secagg.graph._result import GraphParameters
from secagg.graph.mode import Mode

__all__ = ["evaluate_independent", "search_independent"]


def _log_disconnect(n: int, k: int, p_bad: float) -> float:
    """ln of the union bound on the honest survivors' Harary ring falling apart."""
    if p_bad <= 0.0 or n - k - 1 <= 0:
        return -math.inf
    pairs = math.log(n) + math.log(n - k - 1) - LN2
    return min(0.0, pairs + k * math.log(min(p_bad, 1.0)))


def _corrupt_bar(k: int, t: int, mode: Mode) -> int:
    """Corrupt holders that rebuild an honest client's secret (see params.py)."""
    return t if mode == "semi-honest" else 2 * t - (k + 1)


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    top = max(a, b)
    return top + math.log(math.exp(a - top) + math.exp(b - top))


def _largest_correct_threshold(dropped: BinomialTails, delta: float, k: int, log_q: float) -> int:
    """Largest t in 1..k + 1 whose per-client correctness failure is below e^log_q (0 if none).

    The failure probability grows with t, so bisect.
    """

    def ok(t: int) -> bool:
        return _client_incorrect(dropped, delta, k, t) < log_q

    if not ok(1):
        return 0
    lo, hi = 1, k + 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _client_incorrect(dropped: BinomialTails, delta: float, k: int, t: int) -> float:
    """ln P[one client's secret has fewer than t live holders] on a sparse graph, exactly."""
    if delta <= 0.0:
        return -math.inf
    return min(
        0.0,
        _logaddexp(
            math.log(delta) + dropped.log_sf(k - t + 1),
            math.log1p(-delta) + dropped.log_sf(k - t + 2),
        ),
    )


def _complete(
    n: int, t: int, mode: Mode, gamma: float, delta: float, correctness_bits: float
) -> GraphParameters:
    k = n - 1
    log_privacy = BinomialTails.of(n, gamma).log_range(_corrupt_bar(k, t, mode), n - 2)
    log_incorrect = BinomialTails.of(n, delta).log_sf(n - t + 1)
    return GraphParameters(
        degree=k,
        threshold=t,
        complete=True,
        privacy_failure_log2=log_privacy / LN2,
        correctness_failure_log2=log_incorrect / LN2,
        meets_correctness=log_incorrect / LN2 < -correctness_bits,
    )


def _sparse(
    n: int, k: int, t: int, mode: Mode, gamma: float, delta: float, correctness_bits: float
) -> GraphParameters:
    corrupt = BinomialTails.of(k, gamma)
    dropped = BinomialTails.of(k, delta)
    log_each = corrupt.log_sf(_corrupt_bar(k, t, mode))
    disconnect = _log_disconnect(n, k, gamma + delta)
    correctness = log2_union(n, _client_incorrect(dropped, delta, k, t))
    return GraphParameters(
        degree=k,
        threshold=t,
        complete=False,
        privacy_failure_log2=log2_union(n, log_each, disconnect),
        correctness_failure_log2=correctness,
        meets_correctness=correctness < -correctness_bits,
    )


@functools.lru_cache(maxsize=1024)
def evaluate_independent(
    n: int, k: int, t: int, mode: Mode, gamma: float, delta: float, correctness_bits: float
) -> GraphParameters:
    """The failure bounds (n, k, t) achieves under the independent model."""
    if k == n - 1:
        return _complete(n, t, mode, gamma, delta, correctness_bits)
    return _sparse(n, k, t, mode, gamma, delta, correctness_bits)


def _complete_min_threshold(n: int, mode: Mode, gamma: float, log_q: float) -> int:
    """Smallest t obeying the mode's rule whose complete-graph privacy bound is below e^log_q.

    t = n always qualifies (the bar is then n, above the n - 2 corrupt clients that still
    leave two honest ones).
    """
    k = n - 1
    corrupt = BinomialTails.of(n, gamma)
    t = min_threshold(k, mode, 0)
    while t < n and corrupt.log_range(_corrupt_bar(k, t, mode), n - 2) >= log_q:
        t += 1
    return t


@functools.lru_cache(maxsize=256)
def search_independent(
    n: int, gamma: float, delta: float, mode: Mode, pbits: float, cbits: float
) -> GraphParameters:
    """The smallest even sparse degree (and smallest t for it) meeting both targets, else the
    complete graph; see the module docstring for the bounds and params.py for the rules."""
    log_half_p = -(pbits + 1) * LN2
    log_qp = log_half_p - math.log(n)
    log_qc = -cbits * LN2 - math.log(n)
    k_max = n - 2
    p_bad = min(1.0, gamma + delta)
    k = first_connected_degree(n, lambda k: _log_disconnect(n, k, p_bad), log_half_p)
    while k <= k_max:
        corrupt = BinomialTails.of(k, gamma)
        bar = corrupt.smallest_below(log_qp)
        t_lo = min_threshold(k, mode, bar)
        t_hi = _largest_correct_threshold(BinomialTails.of(k, delta), delta, k, log_qc)
        if t_lo <= t_hi:
            # Cheap-complete rule: a sparse degree of at least half of n saves at most a
            # factor of two, and the complete graph cannot come apart; take it if it works.
            if 2 * k >= n - 1:
                t_whole = _complete_min_threshold(n, mode, gamma, -pbits * LN2)
                whole = _complete(n, t_whole, mode, gamma, delta, cbits)
                if whole.meets_correctness:
                    return whole
            return _sparse(n, k, t_lo, mode, gamma, delta, cbits)
        k = next_degree(k, bar, t_hi, mode, k_max, max_t_offset=1)
    # No sparse degree works: the complete graph with the smallest private threshold is the
    # most robust choice; it carries its abort probability and says whether it meets the target.
    t = _complete_min_threshold(n, mode, gamma, -pbits * LN2)
    return _complete(n, t, mode, gamma, delta, cbits)
