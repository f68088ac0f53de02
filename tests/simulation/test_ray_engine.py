"""simulate(..., engine="ray"): client batches in Ray actors on a two-node local cluster."""

from __future__ import annotations

import numpy as np
import pytest

import secagg
from secagg.errors import ConfigError, RoundAbortedError
from secagg.protocol.config import RoundConfig
from secagg.protocol.messages import MaskedInput, Round
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.simulation.ray_engine import ClientBatch
from tests.ray_helpers import RAY_WARNINGS

ray = pytest.importorskip("ray", reason="the ray engine needs the 'ray' extra")

pytestmark = RAY_WARNINGS


def _inputs(n: int, dim: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << bits, size=(n, dim), dtype=np.uint64)


@pytest.mark.parametrize("bits", [20, 32])
def test_exact_sum_with_dropouts_in_every_round(ray_cluster: object, bits: int) -> None:
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    x = _inputs(60, 16, bits)
    dropout = {0: "advertise-keys", 7: "share-keys", 19: "masked-input", 33: "unmasking"}
    result = secagg.simulate(
        x, bits=bits, engine="ray", batch_size=30, dropout=dropout, seed=5, degree=20
    )
    assert result.included == [i for i in range(60) if i not in (0, 7, 19)]
    assert set(result.dropped) == {0, 7, 19}
    np.testing.assert_array_equal(result.total, result.plain_total(x))
    assert {"advertise-keys", "share-keys", "masked-input", "unmasking"} <= set(result.timings)
    # Byte counts are the protocol's, as the local engine counts them.
    local = secagg.simulate(x, bits=bits, dropout=dropout, seed=5, degree=20)
    assert result.server_bytes_received == local.server_bytes_received
    assert result.client_bytes_sent == local.client_bytes_sent


def test_malicious_mode_is_exact(ray_cluster: object) -> None:
    x = _inputs(24, 8, 32, seed=2)
    result = secagg.simulate(
        x, bits=32, engine="ray", batch_size=12, mode="malicious", dropout={3: 2}, seed=9
    )
    assert 3 not in result.included
    assert len(result.included) == 23
    np.testing.assert_array_equal(result.total, result.plain_total(x))
    assert "consistency-check" in result.timings


def test_too_many_dropouts_abort(ray_cluster: object) -> None:
    x = _inputs(20, 4, 16)
    with pytest.raises(RoundAbortedError):
        secagg.simulate(
            x, bits=16, engine="ray", batch_size=10, dropout=0.9, dropout_round=2, seed=1
        )


def test_a_batch_returns_one_partial_sum_for_its_masked_inputs() -> None:
    """The driver receives one D-word vector per batch, never one per client."""
    n, dim, bits = 12, 10, 24
    x = _inputs(n, dim, bits, seed=4)
    config = RoundConfig.create(n, dim, bits, degree=n - 1, allow_unsafe=True)
    server = ServerSession(config)
    batch = ClientBatch(
        config,
        1,
        x.astype(np.uint32),
        {},
        b"s" * 32,
        ClientPolicy(allow_weak_parameters=True, allow_unsafe=True),
        config.spec_digest,
    )
    batch.open(None)
    for reply in batch.start().replies.values():
        server.receive(reply)
    for round_ in (Round.SHARE_KEYS, Round.MASKED_INPUT):
        step = batch.step(int(round_), server.advance(), final=False)
        for reply in step.replies.values():
            server.receive(reply)
    assert step.replies == {}
    assert step.partial is not None
    assert step.also_sent == list(range(2, n + 1))
    first, vector = step.partial
    assert (first, vector.shape) == (1, (dim,))
    assert int(vector.max()) < 1 << bits
    # The partial sum is the sum of the masked inputs mod 2^b: once unmasked, the plain sum.
    server.receive(MaskedInput(config.session_id, first, vector))
    zeros = np.zeros(dim, dtype=np.uint32)
    for index in step.also_sent:
        server.receive(MaskedInput(config.session_id, index, zeros))
    step = batch.step(int(Round.UNMASKING), server.advance(), final=False)
    for reply in step.replies.values():
        server.receive(reply)
    server.advance()
    np.testing.assert_array_equal(server.result.total, x.sum(axis=0) % (1 << bits))


def test_engine_arguments_are_checked() -> None:
    x = _inputs(4, 2, 8)
    with pytest.raises(ConfigError, match="engine must be one of"):
        secagg.simulate(x, bits=8, engine="dask")
    with pytest.raises(ConfigError, match="need engine='ray'"):
        secagg.simulate(x, bits=8, batch_size=2)
    with pytest.raises(ConfigError, match="encode floats"):
        secagg.simulate(x.astype(float), clip=1.0, engine="ray")
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        secagg.simulate(x, bits=8, engine="ray", batch_size=0)
