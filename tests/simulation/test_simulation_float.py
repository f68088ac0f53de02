"""secagg.simulate on float inputs and pytrees: encode, aggregate securely, decode."""

from __future__ import annotations

import numpy as np
import pytest

import secagg
from secagg.errors import ConfigError, EncodingError


def _floats(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, dim))  # test data only


def test_sum_and_mean_within_bound_with_dropouts() -> None:
    x = _floats(10, 200)
    result = secagg.simulate(x, clip=1.0, quant_bits=16, seed=3, dropout={2: "masked-input"})
    assert 2 not in result.included
    plain = x[result.included].sum(axis=0)
    assert result.decoded is not None
    bound = result.decoded.error_bound
    assert np.max(np.abs(result.sum - plain)) <= bound
    assert np.max(np.abs(result.mean - plain / len(result.included))) <= bound / len(
        result.included
    )
    assert result.total.dtype in (np.uint32, np.uint64)


def test_values_outside_the_clip_range_are_clipped_not_wrapped() -> None:
    x = _floats(6, 50)
    x[0, :5] = 1e6
    result = secagg.simulate(x, clip=1.0, quant_bits=12, seed=1, report_clipping=True)
    assert result.decoded is not None
    assert result.decoded.clipped_coordinates == 5
    assert result.decoded.clients_clipped == 1
    expected = np.clip(x, -1, 1).sum(axis=0)
    assert np.max(np.abs(result.sum - expected)) <= result.decoded.error_bound


def test_weighted_mean() -> None:
    x = _floats(8, 30, seed=5)
    w = [1, 2, 3, 4, 5, 6, 7, 8]
    result = secagg.simulate(x, clip=1.0, quant_bits=16, weights=w, seed=2)
    expected = (x * np.array(w)[:, None]).sum(axis=0) / sum(w)
    assert result.decoded is not None
    assert np.max(np.abs(result.weighted_mean - expected)) <= (
        result.decoded.weighted_mean_error_bound
    )


def test_pytree_inputs_keep_their_structure() -> None:
    gen = np.random.default_rng(7)
    clients = [
        {"w": gen.uniform(-0.5, 0.5, (3, 4)).astype(np.float32), "b": gen.uniform(-0.5, 0.5, 4)}
        for _ in range(5)
    ]
    result = secagg.simulate(clients, clip=1.0, quant_bits=16, seed=4)
    assert set(result.sum) == {"w", "b"}
    assert result.sum["w"].shape == (3, 4)
    assert result.sum["w"].dtype == np.float32
    plain = sum(c["w"].astype(np.float64) for c in clients)
    assert result.decoded is not None
    assert np.max(np.abs(result.sum["w"] - plain)) <= result.decoded.error_bound + 1e-6


def test_explicit_bits_that_could_wrap_are_refused() -> None:
    with pytest.raises(EncodingError, match="could wrap"):
        secagg.simulate(_floats(10, 5), clip=1.0, quant_bits=16, bits=17)


def test_integer_result_has_no_float_views() -> None:
    result = secagg.simulate(np.ones((4, 3), dtype=np.uint8), bits=8, seed=1)
    with pytest.raises(ConfigError, match="clip="):
        _ = result.mean


def test_float_options_need_float_mode() -> None:
    with pytest.raises(ConfigError, match="clip="):
        secagg.simulate(np.ones((4, 3), dtype=np.uint8), bits=8, weights=[1, 1, 1, 1])
