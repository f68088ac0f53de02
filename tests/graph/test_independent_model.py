"""The default parameter model: independent corrupt/dropout draws, checked by brute force.

Exact values come from enumerating every subset of corrupt (or dropped) clients with its
probability, on the real neighbour graph, and from rational arithmetic; the finder's numbers
must equal them where the docstring says "exactly" and bound them from above elsewhere.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.graph import (
    MODES,
    Mode,
    NeighbourGraph,
    check_parameters,
    evaluate_parameters,
    find_parameters,
    threshold_bounds,
)
from secagg.graph._binomial import BinomialTails
from secagg.graph._independent import search_independent
from secagg.protocol.config import RoundConfig

S, M = "semi-honest", "malicious"


# -- binomial tails --------------------------------------------------------------------------


def _pmf(m: int, p: Fraction, x: int) -> Fraction:
    return math.comb(m, x) * p**x * (1 - p) ** (m - x)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 80), st.integers(0, 99).map(lambda r: Fraction(r, 100)), st.data())
def test_binomial_tails_are_exact(m: int, p: Fraction, data: st.DataObject) -> None:
    tails = BinomialTails.of(m, float(p))
    s = data.draw(st.integers(-1, m + 2))
    exact = sum((_pmf(m, p, x) for x in range(max(s, 0), m + 1)), Fraction(0))
    if exact == 0:
        assert tails.log_sf(s) == -math.inf
    else:
        assert math.exp(tails.log_sf(s)) == pytest.approx(float(exact), rel=1e-9)
    lo = data.draw(st.integers(0, m))
    hi = data.draw(st.integers(lo, m + 1))
    within = sum((_pmf(m, p, x) for x in range(lo, min(hi, m) + 1)), Fraction(0))
    if within == 0:
        assert tails.log_range(lo, hi) == -math.inf
    else:
        assert math.exp(tails.log_range(lo, hi)) == pytest.approx(float(within), rel=1e-9)


def test_binomial_tails_keep_tiny_tails_precise() -> None:
    # P[Bin(60, 0.05) >= 60] = 0.05^60 ~ 2^-259: far below 1 - (1 - eps), still exact.
    tails = BinomialTails.of(60, 0.05)
    assert tails.log_sf(60) == pytest.approx(60 * math.log(0.05), rel=1e-12)
    assert tails.smallest_below(-40 * math.log(2)) == next(
        s for s in range(62) if sum(_pmf(60, Fraction(1, 20), x) for x in range(s, 61)) < 2**-40
    )


# -- brute force on the real graph ----------------------------------------------------------


def _subsets(n: int, p: Fraction) -> list[tuple[frozenset[int], Fraction]]:
    """Every subset of clients 1..n with its probability when each is in it with prob p."""
    out = []
    for r in range(n + 1):
        weight = p**r * (1 - p) ** (n - r)
        out.extend((frozenset(c), weight) for c in itertools.combinations(range(1, n + 1), r))
    return out


def _exact_abort(n: int, k: int, t: int, delta: Fraction, seed: bytes) -> Fraction:
    """P[some secret the server must rebuild has fewer than t live holders], exactly."""
    graph = NeighbourGraph(seed, range(1, n + 1), k)
    total = Fraction(0)
    for dropped, weight in _subsets(n, delta):
        for u in range(1, n + 1):
            live = sum(1 for v in graph.neighbours(u) if v not in dropped)
            holders = live + (0 if u in dropped else 1)
            if holders < t:
                total += weight
                break
    return total


def _bar(k: int, t: int, mode: Mode) -> int:
    return t if mode == S else 2 * t - (k + 1)


def _exact_share_leak(n: int, k: int, t: int, mode: Mode, gamma: Fraction, seed: bytes) -> Fraction:
    """P[an honest client has >= bar corrupt neighbours while two clients are honest]."""
    graph = NeighbourGraph(seed, range(1, n + 1), k)
    total = Fraction(0)
    for corrupt, weight in _subsets(n, gamma):
        if len(corrupt) > n - 2:
            continue  # the sum alone reveals the last honest input: no protocol leak
        if any(
            sum(1 for v in graph.neighbours(u) if v in corrupt) >= _bar(k, t, mode)
            for u in range(1, n + 1)
            if u not in corrupt
        ):
            total += weight
    return total


def _exact_disconnect(n: int, k: int, p_bad: Fraction, seed: bytes) -> Fraction:
    """P[the clients that are neither corrupt nor dropped fall into two or more components]."""
    graph = NeighbourGraph(seed, range(1, n + 1), k)
    total = Fraction(0)
    for bad, weight in _subsets(n, p_bad):
        good = [u for u in range(1, n + 1) if u not in bad]
        if not good:
            continue
        seen, todo = {good[0]}, [good[0]]
        while todo:
            u = todo.pop()
            for v in graph.neighbours(u):
                if v not in bad and v not in seen:
                    seen.add(v)
                    todo.append(v)
        if len(seen) < len(good):
            total += weight
    return total


@pytest.mark.parametrize("n", [3, 5, 8, 10])
@pytest.mark.parametrize("mode", MODES)
def test_complete_graph_figures_are_exact(n: int, mode: Mode) -> None:
    gamma = delta = Fraction(1, 20)
    seed = bytes(32)
    for t in range(2, n + 1):
        try:
            check_parameters(n, n - 1, t, mode)
        except ValueError:
            continue
        found = evaluate_parameters(n, n - 1, t, mode)
        leak = _exact_share_leak(n, n - 1, t, mode, gamma, seed)
        abort = _exact_abort(n, n - 1, t, delta, seed)
        assert found.privacy_failure == pytest.approx(float(leak), rel=1e-9, abs=0)
        assert found.abort_probability == pytest.approx(float(abort), rel=1e-9)


@pytest.mark.parametrize(("n", "k"), [(9, 2), (10, 4), (10, 6)])
@pytest.mark.parametrize("mode", MODES)
def test_sparse_graph_figures_bound_the_exact_ones(n: int, k: int, mode: Mode) -> None:
    rates = Fraction(1, 10), Fraction(1, 20)
    seed = b"\x07" * 32
    for t in range(threshold_bounds(k, mode)[0], k + 2):
        found = evaluate_parameters(
            n, k, t, mode, corrupt_rate=float(rates[0]), dropout_rate=float(rates[1])
        )
        leak = _exact_share_leak(n, k, t, mode, rates[0], seed)
        apart = _exact_disconnect(n, k, rates[0] + rates[1], seed)
        abort = _exact_abort(n, k, t, rates[1], seed)
        assert found.privacy_failure >= float(leak + apart) * (1 - 1e-9)
        assert found.abort_probability >= float(abort) * (1 - 1e-9)


# -- the finder's choices ---------------------------------------------------------------------


def test_ten_clients_get_private_parameters_and_their_true_abort_probability() -> None:
    # Before: k = 2, t = 2 with "0 dropouts, 0 corrupt" (floor(0.05 * 10) = 0), a correctness
    # bound of 0 and, under independent 5% corruption, a privacy failure near 2^-5.
    found = find_parameters(10)
    seed = bytes(32)
    gamma = delta = Fraction(1, 20)
    leak = _exact_share_leak(10, found.degree, found.threshold, S, gamma, seed)
    abort = _exact_abort(10, found.degree, found.threshold, delta, seed)
    assert leak <= Fraction(1, 2**40)
    assert found.abort_probability == pytest.approx(float(abort), rel=1e-9)
    # No parameters are both private to 2^-40 and correct to 2^-20 for 10 clients at 5%:
    # the finder says so, with the number, instead of claiming a fragile choice is safe.
    assert abort > Fraction(1, 2**20)
    assert not found.meets_correctness
    assert (found.degree, found.threshold, found.complete) == (9, 9, True)
    assert "8.61%" in found.describe()
    assert "above the correctness target" in found.describe()


def test_the_two_of_ten_scenario_is_priced_honestly() -> None:
    # 2 of 10 clients dropping: the private choice for n = 10 cannot survive it, and the
    # config says how likely that is at the design rate (P[2 or more of 10 drop]).
    config = RoundConfig.create(10, 4, 16)
    assert config.parameters is not None
    expected = 1 - sum(_pmf(10, Fraction(1, 20), x) for x in (0, 1))
    assert config.parameters.abort_probability == pytest.approx(float(expected), rel=1e-12)
    assert config.threshold == 9  # every secret needs 9 live holders: 2 dropouts abort


def test_when_cheap_or_needed_the_complete_graph_is_chosen() -> None:
    thirty = find_parameters(30)
    assert thirty.complete
    assert thirty.meets_correctness
    assert thirty.correctness_failure_log2 < -20
    assert thirty.privacy_failure_log2 <= -40
    hundred = find_parameters(100)
    assert not hundred.complete
    assert 2 * hundred.degree < 99
    assert hundred.meets_correctness


@pytest.mark.parametrize(
    ("n", "mode", "expected"),
    [(100, S, (28, 17)), (1000, S, (30, 18)), (10_000, S, (32, 19)), (1000, M, (54, 39))],
)
def test_documented_outputs(n: int, mode: Mode, expected: tuple[int, int]) -> None:
    found = find_parameters(n, mode=mode)
    assert (found.degree, found.threshold) == expected
    assert found.meets_correctness


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 3000),
    st.integers(0, 20).map(lambda r: r / 100),
    st.integers(0, 20).map(lambda r: r / 100),
    st.sampled_from(MODES),
)
def test_results_are_legal_private_and_honest(
    n: int, dropout: float, corrupt: float, mode: Mode
) -> None:
    found = find_parameters(n, dropout_rate=dropout, corrupt_rate=corrupt, mode=mode)
    check_parameters(n, found.degree, found.threshold, mode)
    assert found.complete == (found.degree == n - 1)
    assert found.privacy_failure_log2 <= -40  # privacy is never traded away
    assert found.meets_correctness == (found.correctness_failure_log2 < -20)
    again = evaluate_parameters(
        n, found.degree, found.threshold, mode, dropout_rate=dropout, corrupt_rate=corrupt
    )
    assert again == found  # the finder reports what evaluate_parameters computes
    if not found.meets_correctness:
        # The most robust private choice: the complete graph with the smallest private t.
        assert found.complete
        if found.threshold > 1:
            lower = evaluate_parameters(
                n, n - 1, found.threshold - 1, mode, dropout_rate=dropout, corrupt_rate=corrupt
            )
            allowed = found.threshold - 1 >= threshold_bounds(n - 1, mode)[0]
            assert lower.privacy_failure_log2 > -40 or not allowed


def test_a_million_clients_get_sparse_parameters() -> None:
    for mode in MODES:
        search_independent.cache_clear()  # really search (it takes a few milliseconds)
        found = find_parameters(10**6, mode=mode)
        assert found.degree < 100
        assert found.meets_correctness
