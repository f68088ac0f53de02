"""Whole rounds: the total is exactly the sum of the included inputs, whatever drops out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secagg.errors import RoundAbortedError
from secagg.protocol.messages import Round, RoundComplete
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason, DropReason
from tests.protocol.conftest import make_harness

BITS = [8, 16, 32, 48, 64]


@pytest.mark.parametrize("bits", BITS)
def test_no_dropout_complete_graph(bits: int) -> None:
    h = make_harness(6, 50, bits, seed=bits)
    h.run()
    result = h.server.result
    assert result.included == tuple(range(1, 7))
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))
    assert all(c.state.value == "done" for c in h.clients.values())


@pytest.mark.parametrize("stop", list(Round))
def test_dropout_at_each_round(stop: Round) -> None:
    h = make_harness(8, 40, 32, seed=int(stop), stops={3: stop, 6: stop})
    h.run()
    result = h.server.result
    expected_in = stop >= Round.CONSISTENCY_CHECK  # sent its masked input
    assert (3 in result.included) is expected_in
    assert (6 in result.included) is expected_in
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


@st.composite
def rounds(draw: st.DrawFn) -> tuple[int, int | None, int, int, dict[int, Round], int]:
    n = draw(st.integers(4, 14))
    sparse = draw(st.booleans()) and n >= 6
    degree = None
    if sparse:
        degree = draw(st.sampled_from(list(range(2, n - 1, 2))))
    bits = draw(st.sampled_from(BITS))
    dim = draw(st.integers(1, 40))
    droppers = draw(st.lists(st.integers(1, n), unique=True, max_size=max(1, n // 4)))
    stops = {i: draw(st.sampled_from(list(Round))) for i in droppers}
    seed = draw(st.integers(0, 2**16))
    return n, degree, bits, dim, stops, seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
# Client 5's only neighbours (1 and 2) drop before advertising: the server must leave 5 out
# with not-selected rather than include an input it could never unmask.
@example((8, 2, 8, 1, {1: Round.ADVERTISE_KEYS, 2: Round.ADVERTISE_KEYS}, 0))
def test_random_dropouts_exact_sum_or_clean_abort(
    case: tuple[int, int | None, int, int, dict[int, Round], int],
) -> None:
    n, degree, bits, dim, stops, seed = case
    h = make_harness(n, dim, bits, degree=degree, seed=seed, stops=stops, allow_unsafe=True)
    h.run()
    if h.server.phase is ServerPhase.ABORTED:
        with pytest.raises(RoundAbortedError):
            _ = h.server.result
        return
    result = h.server.result
    # Left out for too few live neighbours: legitimate only while the client still had fewer
    # than t of its closed neighbourhood alive at that point.
    not_selected = {
        u: at for u, (at, why, _) in result.dropped.items() if why is DropReason.NOT_SELECTED
    }
    t = h.config.threshold
    for u, at in not_selected.items():
        holders = h.clients[u].neighbours | {u}
        live = {v for v in holders if stops.get(v, Round.UNMASKING + 1) > at}
        assert len(live) < t, f"client {u} left out with {len(live)} live holders (t = {t})"
    # Included are exactly those that sent their masked input and were not left out.
    assert set(result.included) == {
        i for i in range(1, n + 1) if stops.get(i, Round.UNMASKING + 1) > Round.MASKED_INPUT
    } - set(not_selected)
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


@pytest.mark.parametrize("stop", [Round.ADVERTISE_KEYS, Round.SHARE_KEYS, Round.MASKED_INPUT])
def test_abort_when_survivors_fall_below_threshold(stop: Round) -> None:
    # n = 7, t = 4: four clients dropping leaves three.
    h = make_harness(7, 10, 16, seed=1, stops=dict.fromkeys((1, 2, 3, 4), stop))
    h.run()
    assert h.server.phase is ServerPhase.ABORTED
    assert h.server.abort_reason is AbortReason.TOO_FEW_CLIENTS
    with pytest.raises(RoundAbortedError, match="too-few-clients"):
        _ = h.server.result
    # Every surviving client was told, and none reports inclusion.
    for c in h.clients.values():
        assert c.included is None


def test_abort_when_unmasking_responses_fall_below_threshold() -> None:
    h = make_harness(7, 10, 16, seed=2, stops=dict.fromkeys((1, 2, 3, 4), Round.UNMASKING))
    h.run()
    assert h.server.phase is ServerPhase.ABORTED
    assert h.server.abort_reason is AbortReason.TOO_FEW_SHARES
    with pytest.raises(RoundAbortedError, match="too-few-shares"):
        _ = h.server.result


def test_sparse_graph_large_round() -> None:
    h = make_harness(
        40,
        500,
        32,
        degree=10,
        seed=9,
        stops={2: Round.SHARE_KEYS, 5: Round.MASKED_INPUT, 9: Round.UNMASKING},
    )
    h.run()
    result = h.server.result
    assert 5 not in result.included
    assert 2 not in result.included
    assert 9 in result.included
    np.testing.assert_array_equal(result.total.astype(np.uint64), h.plain_sum(result.included))


def test_late_clients_are_told_they_were_included() -> None:
    h = make_harness(7, 10, 16, seed=3, stops={})
    for c in h.clients.values():
        h.server.receive(c.start())
    for phase in range(3):  # keys, shares, masked inputs; client 2 never answers the last
        for i, m in h.server.advance().items():
            reply = h.clients[i].receive(m)
            if reply is not None and (phase, i) != (2, 2):
                h.server.receive(reply)
    outbox = h.server.advance()  # client 2 is dropped here, after its input was summed
    assert h.server.phase is ServerPhase.DONE
    assert 2 in h.server.result.late
    assert isinstance(outbox[2], RoundComplete)
    assert 2 in outbox[2].included
