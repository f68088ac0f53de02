"""Threshold rules, check_parameters and find_parameters (model, exactness, monotonicity)."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigError
from secagg.graph import (
    MODES,
    GraphParameters,
    Mode,
    check_parameters,
    find_parameters,
    threshold_bounds,
)
from secagg.graph import _independent as independent_module
from secagg.graph import params as params_module

rates = st.integers(0, 30).map(lambda r: r / 100)


# -- threshold rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("degree", "mode", "bounds"),
    [
        (1, "semi-honest", (2, 2)),
        (2, "semi-honest", (2, 3)),
        (30, "semi-honest", (16, 31)),
        (31, "semi-honest", (17, 32)),
        (1, "malicious", (2, 2)),
        (2, "malicious", (3, 3)),
        (30, "malicious", (21, 31)),
        (52, "malicious", (36, 53)),
    ],
)
def test_threshold_bounds_examples(degree: int, mode: Mode, bounds: tuple[int, int]) -> None:
    assert threshold_bounds(degree, mode) == bounds


@given(st.integers(1, 10_000), st.sampled_from(MODES))
def test_threshold_bounds_are_the_smallest_t_obeying_the_rule(degree: int, mode: Mode) -> None:
    min_t, max_t = threshold_bounds(degree, mode)
    fraction = Fraction(1, 2) if mode == "semi-honest" else Fraction(2, 3)
    assert max_t == degree + 1
    assert min_t > fraction * (degree + 1) >= min_t - 1


@pytest.mark.parametrize(
    ("degree", "mode", "message"),
    [
        (0, "semi-honest", "degree k must be >= 1, got 0"),
        (2.5, "semi-honest", "degree k must be an integer, got 2.5"),
        (4, "honest", "mode must be one of 'semi-honest', 'malicious', got 'honest'"),
    ],
)
def test_threshold_bounds_validation(degree: int, mode: Mode, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        threshold_bounds(degree, mode)


# -- check_parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "degree", "threshold", "mode"),
    [
        (1000, 30, 17, "semi-honest"),
        (1000, 30, 16, "semi-honest"),
        (1000, 30, 31, "semi-honest"),
        (1000, 52, 36, "malicious"),
        (2, 1, 2, "semi-honest"),
        (10, 9, 7, "malicious"),
    ],
)
def test_check_parameters_accepts_safe_values(
    n: int, degree: int, threshold: int, mode: Mode
) -> None:
    check_parameters(n, degree, threshold, mode)


@pytest.mark.parametrize(
    ("n", "degree", "threshold", "mode", "message"),
    [
        (1000, 30, 32, "semi-honest", r"1..k \+ 1 = 1..31 for degree 30, got 32"),
        (1000, 30, 0, "semi-honest", "got 0"),
        (1000, 30, -3, "malicious", "got -3"),
        (1000, 31, 17, "semi-honest", "even number in 2..998 .*got 31"),
        (1000, 1000, 17, "semi-honest", "got 1000"),
        (1, 1, 1, "semi-honest", "n must be >= 2"),
        (1000, 30, 17, "paranoid", "mode must be one of"),
    ],
)
@pytest.mark.parametrize("allow_unsafe", [False, True])
def test_check_parameters_always_refuses_impossible_values(
    n: int, degree: int, threshold: int, mode: Mode, message: str, allow_unsafe: bool
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_parameters(n, degree, threshold, mode, allow_unsafe=allow_unsafe)


@pytest.mark.parametrize(
    ("degree", "threshold", "mode", "message"),
    [
        (30, 15, "semi-honest", r"t = 15 is unsafe .* exceed \(k \+ 1\) / 2, i.e. lie in 16..31"),
        (30, 1, "semi-honest", "t = 1 is unsafe"),
        (30, 20, "malicious", r"t = 20 is unsafe .* exceed 2\(k \+ 1\) / 3, i.e. lie in 21..31"),
    ],
)
def test_check_parameters_refuses_unsafe_values_unless_allowed(
    degree: int, threshold: int, mode: Mode, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_parameters(1000, degree, threshold, mode)
    with pytest.raises(ConfigError, match="allow_unsafe=True"):
        check_parameters(1000, degree, threshold, mode)
    check_parameters(1000, degree, threshold, mode, allow_unsafe=True)


# The tests in this part pin the fixed-count model (FCP's), which the finder keeps as an option;
# the default independent-draws model has its own tests in test_independent_model.py.
_fixed = functools.partial(find_parameters, model="fixed-count")


# -- find_parameters: reference points and fallbacks ---------------------------------------


def test_fcp_reference_point() -> None:
    # google-parfait/federated-compute graph_parameter_finder_test.cc: 1000 clients, 5% corrupt,
    # 5% dropout, semi-honest -> degree 30, threshold 17.
    found = _fixed(1000, dropout_rate=0.05, corrupt_rate=0.05, mode="semi-honest")
    assert (found.degree, found.threshold, found.complete) == (30, 17, False)
    assert found.privacy_failure_log2 <= -40
    assert found.correctness_failure_log2 <= -20


@pytest.mark.parametrize(
    ("n", "dropout", "corrupt", "mode", "expected"),
    [
        (100, 0.05, 0.05, "semi-honest", (12, 7)),
        (1000, 0.05, 0.05, "semi-honest", (30, 17)),
        (5000, 0.05, 0.05, "semi-honest", (32, 19)),
        (10_000, 0.05, 0.05, "semi-honest", (34, 20)),
        (100, 0.10, 0.05, "semi-honest", (22, 12)),
        (1000, 0.10, 0.05, "semi-honest", (36, 19)),
        (5000, 0.10, 0.05, "semi-honest", (40, 21)),
        (10_000, 0.10, 0.05, "semi-honest", (42, 22)),
        (100, 0.05, 0.05, "malicious", (18, 13)),
        (1000, 0.05, 0.05, "malicious", (52, 37)),
        (5000, 0.05, 0.05, "malicious", (62, 44)),
        (10_000, 0.05, 0.05, "malicious", (62, 44)),
        (100, 0.10, 0.05, "malicious", (34, 24)),
        (1000, 0.10, 0.05, "malicious", (84, 57)),
        (5000, 0.10, 0.05, "malicious", (100, 68)),
        (10_000, 0.10, 0.05, "malicious", (102, 69)),
    ],
)
def test_documented_outputs(
    n: int, dropout: float, corrupt: float, mode: Mode, expected: tuple[int, int]
) -> None:
    found = _fixed(n, dropout_rate=dropout, corrupt_rate=corrupt, mode=mode)
    assert (found.degree, found.threshold) == expected
    assert not found.complete


@pytest.mark.parametrize(
    ("n", "mode", "expected"),
    [
        (2, "semi-honest", (1, 2)),
        (2, "malicious", (1, 2)),
        (3, "semi-honest", (2, 2)),
        (3, "malicious", (2, 3)),
        (4, "malicious", (3, 3)),
        (5, "malicious", (4, 4)),
    ],
)
def test_small_n_falls_back_to_the_complete_graph(
    n: int, mode: Mode, expected: tuple[int, int]
) -> None:
    found = _fixed(n, mode=mode)
    assert (found.degree, found.threshold) == expected
    assert found.complete
    assert found.degree == n - 1
    assert found.privacy_failure_log2 == found.correctness_failure_log2 == -math.inf


def test_complete_graph_when_no_sparse_degree_works() -> None:
    # Malicious mode needs more than 2/3 of a neighbourhood alive; with 33% dropout no sparse
    # graph on 100 clients gets there, but the complete graph (exactly 67 survivors) does.
    found = _fixed(100, dropout_rate=0.33, corrupt_rate=0.05, mode="malicious")
    assert found == GraphParameters(99, 67, True, -math.inf, -math.inf)


@pytest.mark.parametrize(
    ("n", "dropout", "corrupt", "mode", "message"),
    [
        (2, 0.5, 0.0, "semi-honest", r"need t >= 2 .* rebuilt from the 1 clients that survive"),
        (10, 0.4, 0.05, "malicious", r"n = 10, dropout_rate = 0.4, corrupt_rate = 0.05"),
        (1000, 0.5, 0.3, "semi-honest", "no safe parameters"),
        (1000, 0.45, 0.6, "semi-honest", r"need t >= 601 .* 600 corrupt clients"),
    ],
)
def test_infeasible_requirements_raise(
    n: int, dropout: float, corrupt: float, mode: Mode, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _fixed(n, dropout_rate=dropout, corrupt_rate=corrupt, mode=mode)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 1}, "n must be >= 2 .*got 1"),
        ({"n": 10.0}, "n must be an integer, got 10.0"),
        ({"n": 100, "dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\), got 1.0"),
        ({"n": 100, "dropout_rate": -0.1}, r"dropout_rate must be in \[0, 1\), got -0.1"),
        ({"n": 100, "corrupt_rate": float("nan")}, r"corrupt_rate must be in \[0, 1\), got nan"),
        ({"n": 100, "corrupt_rate": "5%"}, r"corrupt_rate must be a number in \[0, 1\)"),
        ({"n": 100, "corrupt_rate": True}, "corrupt_rate must be a number"),
        ({"n": 100, "privacy_bits": 0}, r"privacy_bits must be in \(0, 256\], got 0"),
        ({"n": 100, "correctness_bits": 300}, r"correctness_bits must be in \(0, 256\], got 300"),
        ({"n": 100, "mode": "byzantine"}, "mode must be one of"),
    ],
)
def test_find_parameters_validation(kwargs: dict[str, object], message: str) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ConfigError, match=message):
        find_parameters(n, **kwargs)  # type: ignore[arg-type]


def test_rates_are_read_as_the_decimals_they_print_as() -> None:
    # 0.07 * 100 is 7.000000000000001 in binary floating point; it must count 7 clients.
    assert _fixed(100, dropout_rate=0.07) == _fixed(
        100,
        dropout_rate=Fraction(7, 100),  # type: ignore[arg-type]
    )


def test_more_bits_never_give_a_smaller_degree() -> None:
    low = _fixed(5000, privacy_bits=20, correctness_bits=10)
    default = _fixed(5000)
    high = _fixed(5000, privacy_bits=80, correctness_bits=40)
    assert low.degree <= default.degree <= high.degree
    assert high.privacy_failure_log2 <= -80
    assert high.correctness_failure_log2 <= -40


@pytest.mark.parametrize("model", ["fixed-count", "independent"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dropout", [0.05, 0.10])
def test_a_million_clients_need_few_evaluations(
    model: str, mode: Mode, dropout: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search for n = 10^6 bisects for the first connected degree and then jumps between
    degrees; it never scans the ~5 * 10^5 even candidates. Counted, not timed (machines are
    noisy): how many degrees get their tails evaluated, and how many disconnection bounds."""
    n = 10**6
    module = params_module if model == "fixed-count" else independent_module
    per_degree = "_degree" if model == "fixed-count" else "min_threshold"
    degrees: list[int] = []
    disconnects: list[int] = []
    evaluate_degree = getattr(module, per_degree)
    log_disconnect = module._log_disconnect

    def counted_degree(*args: object, **kwargs: object) -> object:
        degrees.append(args[1] if model == "fixed-count" else args[0])  # type: ignore[arg-type]
        return evaluate_degree(*args, **kwargs)

    def counted_disconnect(*args: object) -> float:
        disconnects.append(args[1])  # type: ignore[arg-type]
        return float(log_disconnect(*args))

    monkeypatch.setattr(module, per_degree, counted_degree)
    monkeypatch.setattr(module, "_log_disconnect", counted_disconnect)
    params_module._search_fixed.cache_clear()
    independent_module.search_independent.cache_clear()
    found = find_parameters(n, dropout_rate=dropout, mode=mode, model=model)  # type: ignore[arg-type]
    params_module._search_fixed.cache_clear()
    independent_module.search_independent.cache_clear()

    assert not found.complete
    assert found.degree < 200
    # Measured: 3 to 8 degrees; the last one evaluated is the answer, each one a larger degree.
    assert 1 <= len(degrees) <= 16, degrees
    assert degrees == sorted(set(degrees))
    assert degrees[-1] == found.degree
    # Bisection over the even degrees 2..n - 2: one probe of the top, ceil(log2(n / 2)) steps,
    # and one evaluation of the result's own bound (measured: 21).
    assert 1 <= len(disconnects) <= math.ceil(math.log2(n // 2)) + 2, len(disconnects)


# -- find_parameters: properties -----------------------------------------------------------


def _find_or_none(n: int, dropout: float, corrupt: float, mode: Mode) -> GraphParameters | None:
    try:
        return _fixed(n, dropout_rate=dropout, corrupt_rate=corrupt, mode=mode)
    except ConfigError:
        return None


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5000), rates, rates, rates, st.sampled_from(MODES))
def test_more_dropout_or_corruption_never_gives_a_smaller_degree(
    n: int, dropout: float, corrupt: float, extra: float, mode: Mode
) -> None:
    base = _find_or_none(n, dropout, corrupt, mode)
    for worse in (
        _find_or_none(n, min(dropout + extra, 0.3), corrupt, mode),
        _find_or_none(n, dropout, min(corrupt + extra, 0.3), mode),
    ):
        if base is None:
            assert worse is None
        elif worse is not None:
            assert worse.degree >= base.degree


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 20_000), rates, rates, st.sampled_from(MODES))
def test_results_are_legal_and_meet_their_bounds(
    n: int, dropout: float, corrupt: float, mode: Mode
) -> None:
    found = _find_or_none(n, dropout, corrupt, mode)
    assume(found is not None)
    assert found is not None
    check_parameters(n, found.degree, found.threshold, mode)  # safe without allow_unsafe
    assert found.degree <= n - 1
    assert found.complete == (found.degree == n - 1)
    assert found.threshold <= found.degree + (1 if found.complete else 0)
    assert found.privacy_failure_log2 <= -40
    assert found.correctness_failure_log2 <= -20
