"""secagg.simulate: the researcher's API."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import secagg
from secagg.errors import ConfigError, RoundAbortedError


def _inputs(n: int, dim: int, bits: int, seed: int = 0) -> np.ndarray:
    gen = np.random.default_rng(seed)  # test data only
    return gen.integers(0, 1 << bits, size=(n, dim), dtype=np.uint64)


@pytest.mark.parametrize("bits", [8, 32, 48])
def test_total_and_included(bits: int) -> None:
    x = _inputs(12, 30, bits)
    # 3 of 12 dropping is 25%: the default finder would give a threshold that survives no more
    # than one dropout at n = 12 (its privacy floor); this test is about dropouts, so it picks
    # the complete graph with the rule's threshold itself.
    dropout = {0: "share-keys", 5: 2, 7: "unmasking"}
    result = secagg.simulate(x, bits=bits, degree=11, dropout=dropout, seed=1)
    assert result.total.dtype == (np.uint32 if bits <= 32 else np.uint64)
    assert result.included == [i for i in range(12) if i not in (0, 5)]
    assert set(result.dropped) == {0, 5}
    np.testing.assert_array_equal(result.total, result.plain_total(x))
    assert {"advertise-keys", "share-keys", "masked-input", "unmasking"} <= set(result.timings)
    assert result.server_bytes_received > 0
    assert result.client_bytes_sent[1] > x.shape[1] * result.total.itemsize


def test_rate_dropout_is_reproducible_with_seed() -> None:
    x = _inputs(20, 10, 16)
    a = secagg.simulate(x, bits=16, dropout=0.2, dropout_round="masked-input", seed=3)
    b = secagg.simulate(x, bits=16, dropout=0.2, dropout_round="masked-input", seed=3)
    assert a.included == b.included
    assert len(a.included) == 16
    np.testing.assert_array_equal(a.total, a.plain_total(x))


def test_sparse_graph() -> None:
    x = _inputs(30, 20, 32)
    result = secagg.simulate(x, bits=32, degree=8, dropout={3: 1, 4: 2}, seed=2)
    assert result.config.degree == 8
    np.testing.assert_array_equal(result.total, result.plain_total(x))


def test_abort_never_returns_a_sum() -> None:
    x = _inputs(6, 5, 8)
    with pytest.raises(RoundAbortedError, match="too-few"):
        secagg.simulate(x, bits=8, dropout={0: 2, 1: 2, 2: 2, 3: 2}, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dropout": 1.5}, "dropout rate"),
        ({"dropout": {99: 1}}, "clients are 0..5"),
        ({"dropout": {1: "lunch"}}, "unknown round"),
        ({"bits": 4}, "0..2\\^4-1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"bits": 8, **kwargs}
    with pytest.raises(ConfigError, match=message):
        secagg.simulate(_inputs(6, 5, 8), **args)  # type: ignore[arg-type]


def test_float_inputs_are_refused_without_encoding() -> None:
    with pytest.raises(ConfigError, match="encode floats"):
        secagg.simulate(np.zeros((4, 3)), bits=8)


def test_process_parallel_mask_removal_gives_the_same_total() -> None:
    x = _inputs(10, 5000, 32, seed=8)
    serial = secagg.simulate(x, bits=32, dropout={1: "masked-input"}, seed=5)
    parallel = secagg.simulate(x, bits=32, dropout={1: "masked-input"}, seed=5, workers=2)
    np.testing.assert_array_equal(parallel.total, serial.total)
    np.testing.assert_array_equal(parallel.total, parallel.plain_total(x))


def test_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="workers"):
        secagg.simulate(_inputs(4, 3, 8), bits=8, workers=0)


def test_timings_count_each_client_once_per_round() -> None:
    """The final RoundComplete delivery is not a round: unmasking counts 10 clients, not 20."""
    result = secagg.simulate(_inputs(10, 20, 16), bits=16, seed=5)
    counts = {name: timing.clients for name, timing in result.timings.items()}
    assert counts == dict.fromkeys(
        ["advertise-keys", "share-keys", "masked-input", "unmasking"], 10
    )


def test_readme_names_the_real_timing_fields() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("result.timings"))
    named = re.findall(r"\.([a-z_]+)", line.split("#", 1)[1])
    timing = secagg.simulate(_inputs(3, 4, 8), bits=8, seed=6).timings["unmasking"]
    assert named
    assert all(hasattr(timing, name) for name in named), named


def test_default_parameters_record_their_bounds_and_explain_an_abort() -> None:
    x = _inputs(10, 4, 16)
    result = secagg.simulate(x, bits=16, seed=1)
    found = result.config.parameters
    assert found is not None
    assert (found.degree, found.threshold) == (9, 9)  # private to 2^-40 at n = 10
    assert not found.meets_correctness
    assert found.abort_probability == pytest.approx(1 - 0.95**10 - 10 * 0.05 * 0.95**9)
    # Two dropouts break t = 9 of 10; the error says the finder knew no parameters would hold.
    with pytest.raises(RoundAbortedError, match=r"the finder chose k=9, t=9 \(complete graph\)"):
        secagg.simulate(x, bits=16, dropout={0: 2, 1: 2}, seed=1)
