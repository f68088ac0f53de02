"""Issue 11.4: huge values, numpy and float arguments, ragged inputs and bad seeds.

Every bad argument raises an error from secagg.errors naming the argument (and the client for
a ragged input); huge finite values clip by L2 norm instead of silently encoding zeros.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg
from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding import clip_values
from secagg.errors import ConfigError, EncodingError, SecAggError


def test_l2_clipping_of_huge_values_keeps_the_direction() -> None:
    out, clipped = clip_values(np.array([1e308] * 6), 1.0, "l2")
    assert clipped == 6
    np.testing.assert_allclose(out, np.full(6, 1 / math.sqrt(6)), rtol=1e-12)


def test_simulate_l2_clips_huge_values_to_the_norm_bound() -> None:
    result = secagg.simulate(
        [[1e308] * 6, [0.0] * 6], clip=1.0, clip_mode="l2", quant_bits=16, seed=1
    )
    np.testing.assert_allclose(result.sum, np.full(6, 1 / math.sqrt(6)), atol=1e-3)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1.7e308, max_value=1.7e308),
        min_size=1,
        max_size=12,
    ),
    st.floats(min_value=1e-3, max_value=1e3),
)
def test_l2_clipping_property(values: list[float], clip: float) -> None:
    x = np.array(values)
    out, _ = clip_values(x, clip, "l2")
    assert np.all(np.isfinite(out))
    peak = float(np.max(np.abs(x)))
    norm = peak * float(np.linalg.norm(x / peak)) if peak else 0.0
    if norm <= clip:
        np.testing.assert_array_equal(out, x)
    else:
        # Clipped to the bound, same direction: every sign kept, norm equal to clip.
        assert np.linalg.norm(out) == pytest.approx(clip, rel=1e-9)
        assert np.all(np.sign(out[np.abs(out) > 0]) == np.sign(x[np.abs(out) > 0]))


def test_numpy_integer_bits_63_is_accepted() -> None:
    result = secagg.simulate([[1, 2], [3, 4]], bits=np.int64(63), seed=1)
    assert result.total.tolist() == [4, 6]
    assert result.bits == 63


@pytest.mark.parametrize("bits", [32.0, "32", True, 0, 65])
def test_bad_bits_name_the_argument(bits: object) -> None:
    with pytest.raises(ConfigError, match=r"bits must be an integer in 1\.\.64"):
        secagg.simulate([[1, 2], [3, 4]], bits=bits, seed=1)  # type: ignore[arg-type]


def test_ragged_integer_inputs_name_the_client() -> None:
    with pytest.raises(ConfigError, match="client 2 has 1 values, client 0 has 2"):
        secagg.simulate([[1, 2], [3, 4], [5]], bits=8, seed=1)


def test_ragged_float_inputs_name_the_client() -> None:
    with pytest.raises(EncodingError, match="client 1: input structure differs"):
        secagg.simulate([[0.1, 0.2], [0.3]], clip=1.0, seed=1)


@pytest.mark.parametrize(
    ("seed", "match"),
    [(1.5, "seed must be an int, bytes or str, got float"), (2**200, "seed must be an integer")],
)
def test_bad_seeds_name_the_argument(seed: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        secagg.simulate([[1, 2], [3, 4]], bits=8, seed=seed)  # type: ignore[arg-type]


@given(st.one_of(st.floats(), st.integers().filter(lambda v: not -(2**127) <= v < 2**127)))
def test_deterministic_random_refuses_bad_seeds_with_a_secagg_error(seed: object) -> None:
    with pytest.raises(SecAggError, match="seed must be"):
        DeterministicRandom(seed)  # type: ignore[arg-type]


@given(st.integers(min_value=-(2**127), max_value=2**127 - 1))
def test_deterministic_random_int_seeds_are_reproducible(seed: int) -> None:
    assert DeterministicRandom(seed).random_bytes(16) == DeterministicRandom(seed).random_bytes(16)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"inputs": 5, "clip": 1.0}, "inputs must be a sequence"),
        ({"inputs": [[0.1], [0.2]], "clip": 1.0, "weights": ["a", 1]}, r"weights\[0\]"),
        ({"inputs": [[1], [2]], "bits": 8, "dropout": "x"}, "dropout must be a fraction"),
    ],
)
def test_other_bad_arguments_name_themselves(kwargs: dict[str, object], match: str) -> None:
    inputs = kwargs.pop("inputs")
    with pytest.raises(ConfigError, match=match):
        secagg.simulate(inputs, seed=1, **kwargs)  # type: ignore[arg-type]
