"""Privacy invariants on what the server obtained, and the uniformity of masked inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.protocol.messages import ClientMessage, MaskedInput, Round
from tests.protocol.conftest import make_harness


@pytest.mark.parametrize("degree", [None, 6])
@pytest.mark.parametrize("seed", range(3))
def test_server_never_holds_both_secrets_of_a_client(degree: int | None, seed: int) -> None:
    stops = {2: Round.MASKED_INPUT, 5: Round.UNMASKING, 8: Round.SHARE_KEYS}
    h = make_harness(12, 8, 32, degree=degree, seed=seed, stops=stops, allow_unsafe=True)
    h.run()
    t = h.config.threshold
    view = h.server.view
    assert view.key_shares, "the dropped client's mask key should have been reconstructed"
    for v in range(1, 13):
        seeds = len(view.seed_shares.get(v, ()))
        keys = len(view.key_shares.get(v, ()))
        assert not (seeds >= t and keys >= t), f"server holds both secrets of client {v}"
        assert not (seeds and keys), f"server asked for both kinds of share of client {v}"


def _chi_square_critical(df: int, z: float = 3.09) -> float:
    """Upper critical value (alpha = 0.001 for z = 3.09) by the Wilson-Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("bits", [8, 32])
def test_masked_input_is_uniform(bits: int) -> None:
    captured: list[np.ndarray] = []

    def hook(r: Round, i: int, msg: ClientMessage) -> ClientMessage | None:
        if isinstance(msg, MaskedInput) and i == 1:
            captured.append(msg.vector.copy())
        return msg

    h = make_harness(5, 50_000, bits, seed=21)
    h.inputs[0] = 7  # a constant input: anything but uniform
    h.clients[1]._state.data[:] = 7  # type: ignore[attr-defined]
    h.hook = hook
    h.run()
    (vector,) = captured
    bins = 256
    values = vector.astype(np.uint64) >> np.uint64(bits - 8)  # the top 8 bits
    counts = np.bincount(values.astype(np.int64), minlength=bins)
    expected = vector.size / bins
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < _chi_square_critical(bins - 1)
    # And the round still sums correctly with that input.
    result = h.server.result
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))
