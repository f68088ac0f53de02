"""Threshold rules and the safe (k, t) finder for the neighbour graph.

The finder follows Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead" (CCS 2020), with the bounds Google's federated-compute uses in
``fcp/secagg/server/graph_parameter_finder.cc``. The model:

- n clients, of which A = floor(corrupt_rate * n) are corrupt and D = floor(dropout_rate * n)
  drop out, both chosen independently of the graph seed. A client's k neighbours are then a
  uniformly random k-subset of the other n - 1 clients, so the number of corrupt (or dropped)
  neighbours is hypergeometric.
- Privacy fails if (a) the honest survivors' graph is disconnected, which on a Harary ring needs
  two disjoint runs of k/2 consecutive corrupt-or-dropped clients (union bound over the
  n(n - k - 1)/2 pairs of runs), or (b) some honest client has enough corrupt neighbours to
  rebuild one of its secrets: t in semi-honest mode; in malicious mode 2t - (k + 1), because the
  server may steer the k + 1 - c honest holders into two camps that reveal different secrets.
  Each event gets half of the 2^-privacy_bits budget; (b) is a union bound over n clients.
- Correctness fails if some client has fewer than t surviving neighbours (PROTOCOL.md's
  condition; it ignores the client's own share, so it over-counts failures a little), union
  bound over n clients at 2^-correctness_bits. Every sparse degree is therefore run with
  t <= k.

The smallest even k is searched upward. Degrees that provably cannot work are skipped (see
:func:`_next_degree`), which keeps n = 10^6 fast. If no k <= n - 2 works, the complete graph
is used: with fixed counts nothing is random there, privacy needs t > A (malicious:
2t - n > A) and correctness needs t <= n - D, since every secret that must be rebuilt has
exactly the n - D survivors as live holders.

Where this differs from FCP, on purpose: neighbours are drawn from the n - 1 other clients
(FCP: from n, slightly optimistic); malicious mode counts the client's own share, so k + 1
holders (FCP: k); the PROTOCOL.md threshold rules are enforced on top (FCP's semi-honest finder
may return t = 2); FCP raises t to 2 after its correctness check, which can break that check
for tiny n; and when no sparse graph works the complete graph is tried instead of failing.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from secagg.errors import ConfigError, UnsafeParametersError
from secagg.graph._checks import MODES, Mode, check_degree, check_int, check_mode, check_n
from secagg.graph._hypergeom import UpperTails

__all__ = [
    "MODES",
    "GraphParameters",
    "Mode",
    "check_parameters",
    "find_parameters",
    "threshold_bounds",
]

_LN2 = math.log(2.0)
# Bits beyond this only make the search slower; 2^-256 is far past any meaningful guarantee.
_MAX_BITS = 256


@dataclass(frozen=True, slots=True)
class GraphParameters:
    """A safe neighbour degree and threshold, with the failure bounds they achieve.

    ``*_failure_log2`` are log2 of the union-bound probabilities (``-inf`` when the event is
    impossible under the model, e.g. the complete graph with fixed corrupt/dropout counts).
    """

    degree: int
    threshold: int
    complete: bool
    privacy_failure_log2: float
    correctness_failure_log2: float


def threshold_bounds(degree: int, mode: Mode) -> tuple[int, int]:
    """``(min_t, max_t)`` allowed by PROTOCOL.md for neighbour degree k.

    t <= k + 1 always (a client shares with itself and its k neighbours); semi-honest needs
    t > (k + 1) / 2, malicious t > 2(k + 1) / 3.
    """
    k = check_int("degree k", degree, 1)
    holders = k + 1
    if check_mode(mode) == "semi-honest":
        return holders // 2 + 1, holders
    return (2 * holders) // 3 + 1, holders


def check_parameters(
    n: int, degree: int, threshold: int, mode: Mode, *, allow_unsafe: bool = False
) -> None:
    """Raise ConfigError unless (n, k, t) is usable in ``mode``.

    Impossible values (bad n or k, t outside 1..k + 1) are always refused; a t below the mode's
    threshold rule is refused unless ``allow_unsafe`` is true.
    """
    n = check_n(n)
    k = check_degree(n, degree)
    t = check_int("threshold t", threshold)
    min_t, max_t = threshold_bounds(k, mode)
    if not 1 <= t <= max_t:
        raise ConfigError(f"threshold t must be in 1..k + 1 = 1..{max_t} for degree {k}, got {t}")
    if t < min_t and not allow_unsafe:
        rule = "(k + 1) / 2" if mode == "semi-honest" else "2(k + 1) / 3"
        raise UnsafeParametersError(
            f"threshold t = {t} is unsafe in {mode} mode for degree {k}: t must exceed {rule}, "
            f"i.e. lie in {min_t}..{max_t}"
        )


def find_parameters(
    n: int,
    *,
    dropout_rate: float = 0.05,
    corrupt_rate: float = 0.05,
    mode: Mode = "semi-honest",
    privacy_bits: float = 40,
    correctness_bits: float = 20,
) -> GraphParameters:
    """The smallest even degree k, and the smallest threshold t for it, that keeps the
    probability of a privacy failure below 2^-privacy_bits and of a correctness failure below
    2^-correctness_bits (see the module docstring for the model).

    Falls back to the complete graph (k = n - 1) when no sparse graph qualifies; raises
    ConfigError when not even the complete graph does.
    """
    n = check_n(n)
    mode = check_mode(mode)
    dropouts = _count("dropout_rate", dropout_rate, n)
    corrupt = _count("corrupt_rate", corrupt_rate, n)
    pbits = _bits("privacy_bits", privacy_bits)
    cbits = _bits("correctness_bits", correctness_bits)
    found = _search(n, corrupt, dropouts, mode, pbits, cbits)
    if found is None:
        need = _min_threshold(n - 1, mode, corrupt + 1)
        raise ConfigError(
            f"no safe parameters for n = {n}, dropout_rate = {dropout_rate}, "
            f"corrupt_rate = {corrupt_rate} in {mode} mode: no sparse degree works, and the "
            f"complete graph would need t >= {need} (the {mode} rule and {corrupt} corrupt "
            f"clients) while secrets must be rebuilt from the {n - dropouts} clients that "
            f"survive ({dropouts} of {n} drop out); lower the rates or raise n"
        )
    return found


def _count(name: str, rate: object, n: int) -> int:
    """floor(rate * n), reading a float as the decimal it prints as (0.05 is 1/20, not a hair
    more), so 5% of 1000 clients is exactly 50."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ConfigError(f"{name} must be a number in [0, 1), got {rate!r}")
    if not math.isfinite(float(rate)):
        raise ConfigError(f"{name} must be in [0, 1), got {rate!r}")
    exact = rate if isinstance(rate, numbers.Rational) else repr(float(rate))
    value = Fraction(exact)
    if not 0 <= value < 1:
        raise ConfigError(f"{name} must be in [0, 1), got {rate!r}")
    return math.floor(value * n)


def _bits(name: str, bits: object) -> float:
    if isinstance(bits, bool) or not isinstance(bits, numbers.Real):
        raise ConfigError(f"{name} must be a number in (0, {_MAX_BITS}], got {bits!r}")
    if not 0 < float(bits) <= _MAX_BITS:
        raise ConfigError(f"{name} must be in (0, {_MAX_BITS}], got {bits!r}")
    return float(bits)


def _min_threshold(k: int, mode: Mode, corrupt_bar: int) -> int:
    """Smallest t that obeys the mode's rule and keeps the corrupt count that breaks privacy
    (t, or 2t - (k + 1) in malicious mode) at or above ``corrupt_bar``."""
    rule_min, _ = threshold_bounds(k, mode)
    if mode == "semi-honest":
        return max(rule_min, corrupt_bar)
    return max(rule_min, -(-(corrupt_bar + k + 1) // 2))


def _log_disconnect(n: int, k: int, bad: int) -> float:
    """ln of the union bound on the honest survivors' Harary ring falling apart."""
    if k > bad:
        return -math.inf
    pairs = math.log(n) + math.log(n - k - 1) - _LN2
    # Pr[k given positions are all bad] = bad! (n - k)! / ((bad - k)! n!)
    return (
        pairs
        + math.lgamma(bad + 1)
        - math.lgamma(bad - k + 1)
        + math.lgamma(n - k + 1)
        - math.lgamma(n + 1)
    )


def _first_connected_degree(n: int, bad: int, log_q: float) -> int:
    """Smallest even k in 2..n - 2 with a small enough disconnection bound (n - 1 if none).

    The bound falls as k grows (fewer, longer runs are needed), so bisect.
    """
    lo, hi = 1, (n - 2) // 2  # k = 2j, j in lo..hi
    if hi < lo or _log_disconnect(n, 2 * hi, bad) >= log_q:
        return n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _log_disconnect(n, 2 * mid, bad) < log_q:
            hi = mid
        else:
            lo = mid + 1
    return 2 * lo


@dataclass(frozen=True, slots=True)
class _Degree:
    """What one sparse degree k allows: thresholds in t_lo..t_hi (empty when t_lo > t_hi)."""

    k: int
    corrupt_bar: int  # smallest corrupt-neighbour count whose per-client tail fits the budget
    t_lo: int  # smallest t that is private and obeys the mode's rule
    t_correct: int  # largest t that is correct; always <= k
    corrupt_tails: UpperTails
    dropout_tails: UpperTails


def _degree(
    n: int, k: int, corrupt: int, dropouts: int, mode: Mode, log_qp: float, log_qc: float
) -> _Degree:
    corrupt_tails = UpperTails.of(n - 1, corrupt, k)
    dropout_tails = UpperTails.of(n - 1, dropouts, k)
    bar = corrupt_tails.smallest_below(log_qp)
    # Correct iff Pr[dropped neighbours >= k - t + 1] is small, i.e. k - t + 1 >= d.
    d = dropout_tails.smallest_below(log_qc)
    t_lo = _min_threshold(k, mode, bar)
    return _Degree(k, bar, t_lo, k + 1 - d, corrupt_tails, dropout_tails)


def _next_degree(found: _Degree, mode: Mode, k_max: int) -> int:
    """The next even degree that could work, given what degree ``found.k`` allows.

    Two couplings make this exact: drawing more neighbours never lowers the corrupt count,
    so the corrupt bar never falls as k grows; and it raises the surviving count by at most
    the number of extra draws, so the largest correct t grows by at most k' - k. Hence k' is
    hopeless while max(rule(k'), bar-derived t) > min(k', t_correct(k) + k' - k), a gap that
    shrinks as k' grows; bisect for where it closes.
    """

    def hopeless(k2: int) -> bool:
        lower = _min_threshold(k2, mode, found.corrupt_bar)
        return lower > min(k2, found.t_correct + (k2 - found.k))

    step = 1
    while found.k + 2 * step <= k_max and hopeless(found.k + 2 * step):
        step *= 2
    lo, hi = step // 2 + 1, step  # hopeless at 2 * (lo - 1); maybe not at 2 * hi
    while lo < hi:
        mid = (lo + hi) // 2
        if hopeless(found.k + 2 * mid):
            lo = mid + 1
        else:
            hi = mid
    return found.k + 2 * lo


def _log2_union(n: int, log_each: float, log_extra: float = -math.inf) -> float:
    total = np.logaddexp(log_extra, math.log(n) + log_each) if log_each > -math.inf else log_extra
    return float(total) / _LN2


@functools.lru_cache(maxsize=256)
def _search(
    n: int, corrupt: int, dropouts: int, mode: Mode, pbits: float, cbits: float
) -> GraphParameters | None:
    log_half_p = -(pbits + 1) * _LN2  # each of the two privacy events gets half the budget
    log_qp = log_half_p - math.log(n)
    log_qc = -cbits * _LN2 - math.log(n)
    bad = corrupt + dropouts
    k_max = n - 2  # largest sparse degree; n - 1 is the complete graph
    k = _first_connected_degree(n, bad, log_half_p)
    while k <= k_max:
        found = _degree(n, k, corrupt, dropouts, mode, log_qp, log_qc)
        if found.t_lo <= found.t_correct:
            t = found.t_lo
            corrupt_bar = t if mode == "semi-honest" else 2 * t - (k + 1)
            log_corr = found.dropout_tails.log_sf(k - t + 1)
            return GraphParameters(
                degree=k,
                threshold=t,
                complete=False,
                privacy_failure_log2=_log2_union(
                    n, found.corrupt_tails.log_sf(corrupt_bar), _log_disconnect(n, k, bad)
                ),
                correctness_failure_log2=_log2_union(n, log_corr),
            )
        k = _next_degree(found, mode, k_max)
    # Complete graph: every honest client sees exactly `corrupt` corrupt neighbours, the
    # survivors always form one component, and each secret has n - D live holders.
    k = n - 1
    t = _min_threshold(k, mode, corrupt + 1)
    if t > n - dropouts:
        return None
    return GraphParameters(k, t, True, -math.inf, -math.inf)
