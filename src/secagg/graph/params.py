"""Threshold rules and the safe (k, t) finder for the neighbour graph.

The finder follows Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead" (CCS 2020), with the bounds Google's federated-compute uses in
``fcp/secagg/server/graph_parameter_finder.cc``. Two models of who is corrupt and who drops:

- ``model="independent"`` (the default, see ``_independent.py``): each client is corrupt with
  probability corrupt_rate and drops with probability dropout_rate, independently, as a fleet
  of devices behaves; counts among a client's k neighbours are binomial. Small rounds get no
  free pass: at n = 10 a 5% rate is a real risk, not floor(0.5) = 0 clients. The complete graph
  is used when no sparse degree meets the targets, and also when the sparse degree would be at
  least half of n (at most twice the work, and the complete graph cannot come apart). When
  nothing meets the correctness target, the most robust private parameters (the complete
  graph with the smallest private t) come back with ``meets_correctness=False`` and their
  abort probability; privacy is never traded away.
- ``model="fixed-count"`` (FCP's model, kept for comparison with its reference table): exactly
  A = floor(corrupt_rate * n) clients are corrupt and D = floor(dropout_rate * n) drop out,
  both chosen independently of the graph seed, so the number of corrupt (or dropped)
  neighbours is hypergeometric. The rest of this docstring describes it.

Under both models, privacy fails if (a) the honest survivors' graph is disconnected, which on
a Harary ring needs two disjoint runs of k/2 consecutive corrupt-or-dropped clients (union
bound over the n(n - k - 1)/2 pairs of runs), or (b) some honest client has enough corrupt
neighbours to rebuild one of its secrets: t in semi-honest mode; in malicious mode
2t - (k + 1), because the server may steer the k + 1 - c honest holders into two camps that
reveal different secrets. Each event gets half of the 2^-privacy_bits budget; (b) is a union
bound over n clients.

Fixed-count model details. Correctness fails if some client has fewer than t surviving
neighbours (PROTOCOL.md's condition; it ignores the client's own share, so it over-counts
failures a little), union bound over n clients at 2^-correctness_bits. Every sparse degree is
therefore run with t <= k. The smallest even k is searched upward. Degrees that provably
cannot work are skipped (see :func:`~secagg.graph._common.next_degree`), which keeps
n = 10^6 fast. If no k <= n - 2 works, the complete graph is used: with fixed counts nothing
is random there, privacy needs t > A (malicious: 2t - n > A) and correctness needs
t <= n - D, since every secret that must be rebuilt has exactly the n - D survivors as live
holders.

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
from typing import Final, Literal

from secagg.errors import ConfigError, UnsafeParametersError
from secagg.graph._checks import check_degree, check_int, check_n
from secagg.graph._common import LN2, log2_union, min_threshold, next_degree, threshold_bounds
from secagg.graph._connect import first_connected_degree
from secagg.graph._hypergeom import UpperTails
from secagg.graph._independent import evaluate_independent, search_independent
from secagg.graph._result import GraphParameters
from secagg.graph.mode import Mode, check_mode

__all__ = [
    "MODELS",
    "GraphParameters",
    "ParameterModel",
    "check_parameters",
    "evaluate_parameters",
    "find_parameters",
    "threshold_bounds",
]

ParameterModel = Literal["independent", "fixed-count"]
MODELS: Final[tuple[ParameterModel, ...]] = ("independent", "fixed-count")
# Bits beyond this only make the search slower; 2^-256 is far past any meaningful guarantee.
_MAX_BITS = 256


def check_parameters(
    n: int, degree: int, threshold: int, mode: Mode, *, allow_unsafe: bool = False
) -> None:
    """Raise ConfigError unless (n, k, t) is usable in ``mode``.

    Impossible values (bad n or k, t outside 1..k + 1) are always refused; a t below the mode's
    threshold rule is refused (with :class:`UnsafeParametersError`) unless ``allow_unsafe``.
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
    model: ParameterModel = "independent",
) -> GraphParameters:
    """The smallest even degree k, and the smallest threshold t for it, that keeps the
    probability of a privacy failure below 2^-privacy_bits and of a correctness failure below
    2^-correctness_bits under ``model`` (see the module docstring).

    Independent model: falls back to the complete graph when no sparse degree qualifies (or
    the sparse one is at least half of n); when even that misses the correctness target it is
    returned anyway with ``meets_correctness=False`` and its abort probability. Fixed-count
    model: raises ConfigError when not even the complete graph qualifies.
    """
    n = check_n(n)
    mode = check_mode(mode)
    pbits = _bits("privacy_bits", privacy_bits)
    cbits = _bits("correctness_bits", correctness_bits)
    if model == "independent":
        gamma = _rate("corrupt_rate", corrupt_rate)
        delta = _rate("dropout_rate", dropout_rate)
        return search_independent(n, gamma, delta, mode, pbits, cbits)
    if model != "fixed-count":
        raise ConfigError(f"model must be one of {', '.join(map(repr, MODELS))}, got {model!r}")
    dropouts = _count("dropout_rate", dropout_rate, n)
    corrupt = _count("corrupt_rate", corrupt_rate, n)
    found = _search_fixed(n, corrupt, dropouts, mode, pbits, cbits)
    if found is None:
        need = min_threshold(n - 1, mode, corrupt + 1)
        raise ConfigError(
            f"no safe parameters for n = {n}, dropout_rate = {dropout_rate}, "
            f"corrupt_rate = {corrupt_rate} in {mode} mode: no sparse degree works, and the "
            f"complete graph would need t >= {need} (the {mode} rule and {corrupt} corrupt "
            f"clients) while secrets must be rebuilt from the {n - dropouts} clients that "
            f"survive ({dropouts} of {n} drop out); lower the rates or raise n"
        )
    return found


def evaluate_parameters(
    n: int,
    degree: int,
    threshold: int,
    mode: Mode,
    *,
    dropout_rate: float = 0.05,
    corrupt_rate: float = 0.05,
    correctness_bits: float = 20,
) -> GraphParameters:
    """The failure bounds that given (n, k, t) achieve under the independent model.

    Used by clients to judge an announced config and by the server to report what it chose.
    A threshold below the mode's rule is evaluated too (its privacy bound is then poor).
    """
    n = check_n(n)
    k = check_degree(n, degree)
    t = check_int("threshold t", threshold)
    if not 1 <= t <= k + 1:
        raise ConfigError(f"threshold t must be in 1..k + 1 = 1..{k + 1} for degree {k}, got {t}")
    return evaluate_independent(
        n,
        k,
        t,
        check_mode(mode),
        _rate("corrupt_rate", corrupt_rate),
        _rate("dropout_rate", dropout_rate),
        _bits("correctness_bits", correctness_bits),
    )


def _rate(name: str, rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ConfigError(f"{name} must be a number in [0, 1), got {rate!r}")
    value = float(rate)
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ConfigError(f"{name} must be in [0, 1), got {rate!r}")
    return value


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


def _log_disconnect(n: int, k: int, bad: int) -> float:
    """ln of the union bound on the honest survivors' Harary ring falling apart."""
    if k > bad:
        return -math.inf
    pairs = math.log(n) + math.log(n - k - 1) - LN2
    # Pr[k given positions are all bad] = bad! (n - k)! / ((bad - k)! n!)
    return (
        pairs
        + math.lgamma(bad + 1)
        - math.lgamma(bad - k + 1)
        + math.lgamma(n - k + 1)
        - math.lgamma(n + 1)
    )


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
    t_lo = min_threshold(k, mode, bar)
    return _Degree(k, bar, t_lo, k + 1 - d, corrupt_tails, dropout_tails)


@functools.lru_cache(maxsize=256)
def _search_fixed(
    n: int, corrupt: int, dropouts: int, mode: Mode, pbits: float, cbits: float
) -> GraphParameters | None:
    log_half_p = -(pbits + 1) * LN2  # each of the two privacy events gets half the budget
    log_qp = log_half_p - math.log(n)
    log_qc = -cbits * LN2 - math.log(n)
    bad = corrupt + dropouts
    k_max = n - 2  # largest sparse degree; n - 1 is the complete graph
    k = first_connected_degree(n, lambda k: _log_disconnect(n, k, bad), log_half_p)
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
                privacy_failure_log2=log2_union(
                    n, found.corrupt_tails.log_sf(corrupt_bar), _log_disconnect(n, k, bad)
                ),
                correctness_failure_log2=log2_union(n, log_corr),
            )
        k = next_degree(found.k, found.corrupt_bar, found.t_correct, mode, k_max)
    # Complete graph: every honest client sees exactly `corrupt` corrupt neighbours, the
    # survivors always form one component, and each secret has n - D live holders.
    k = n - 1
    t = min_threshold(k, mode, corrupt + 1)
    if t > n - dropouts:
        return None
    return GraphParameters(k, t, True, -math.inf, -math.inf)
