"""The server's running sum costs memory only once masked inputs arrive (issue 11.6)."""

from __future__ import annotations

import tracemalloc

from secagg.protocol.config import RoundConfig
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase

DIM = 2**24  # 64 MiB of 32-bit words if the sum were allocated


def test_a_round_aborted_before_masked_input_never_allocates_the_sum() -> None:
    config = RoundConfig.create(2, DIM, 32)
    tracemalloc.start()
    try:
        session = ServerSession(config)
        session.advance()  # no keys advertised: the round aborts (too-few-clients)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert session.phase is ServerPhase.ABORTED
    assert peak < DIM  # a quarter of the sum's size: the sum was never allocated
