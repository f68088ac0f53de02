"""The async Python API: `await secagg.Client(...).submit(vector)` against an in-process server."""

from __future__ import annotations

import asyncio

import numpy as np

import secagg
from secagg.transport import AggregationServer, Outcome, RoundReport, ServerOptions
from secagg.transport.clock import ManualClock


async def _round(
    options: ServerOptions, vectors: dict[str, np.ndarray], *, joiners: int | None = None
) -> tuple[RoundReport, dict[str, Outcome]]:
    """One round; with ``joiners``, the join deadline passes (on the server's ManualClock) as
    soon as that many clients wait, instead of after ``join_timeout`` real seconds."""
    clock = ManualClock()
    server = AggregationServer(options, "127.0.0.1:0", clock=clock)
    port = await server.start()
    running = asyncio.create_task(server.run())
    gathered = asyncio.gather(
        *(
            secagg.Client(f"127.0.0.1:{port}", name=n, insecure=True, timeout=30).submit(v)
            for n, v in vectors.items()
        )
    )
    if joiners is not None:
        while server.waiting() < joiners:
            await asyncio.sleep(0.01)
        clock.advance(options.join_timeout)
    outcomes = await asyncio.wait_for(gathered, 60)
    reports = await asyncio.wait_for(running, 60)
    return reports[0], {o.name: o for o in outcomes}


def test_submit_returns_included_outcomes() -> None:
    rng = np.random.default_rng(0)
    vectors = {f"u{i}": rng.integers(0, 2**16, 300).astype(np.uint32) for i in range(5)}
    options = ServerOptions(clients=5, dim=300, bits=16, phase_timeout=20, join_timeout=20)
    report, outcomes = asyncio.run(_round(options, vectors))
    assert report.status == "complete"
    assert report.total is not None
    expected = sum(v.astype(np.uint64) for v in vectors.values()) % 2**16
    assert np.array_equal(report.total.astype(np.uint64), expected)
    assert all(o.included and o.num_included == 5 for o in outcomes.values())
    assert sorted(o.index for o in outcomes.values() if o.index is not None) == [1, 2, 3, 4, 5]


def test_bad_inputs_are_named_in_the_outcome() -> None:
    rng = np.random.default_rng(1)
    vectors = {f"u{i}": rng.integers(0, 2**8, 50).astype(np.uint32) for i in range(4)}
    vectors["toolarge"] = np.full(50, 2**8, dtype=np.uint32)  # not below 2^bits
    vectors["short"] = np.zeros(49, dtype=np.uint32)  # wrong length for --dim 50
    options = ServerOptions(
        clients=6, min_clients=4, dim=50, bits=8, phase_timeout=20, join_timeout=3
    )
    # "short" never connects (its length is wrong for D): 5 join, the round starts at the
    # join deadline.
    report, outcomes = asyncio.run(_round(options, vectors, joiners=5))
    assert report.status == "complete"
    assert outcomes["short"].reason == "wrong-length"
    assert outcomes["toolarge"].reason == "invalid-input"
    assert report.dropped == {"toolarge": "client-aborted"}
    assert report.included == [f"u{i}" for i in range(4)]
    assert all(outcomes[f"u{i}"].included for i in range(4))


def test_float_pytrees_with_an_encoder() -> None:
    from secagg.encoding import Encoder, EncodingSpec

    gen = np.random.default_rng(2)  # test data only
    trees = [{"w": gen.uniform(-1, 1, (4, 5)), "b": gen.uniform(-1, 1, 3)} for _ in range(4)]
    weights = [1.0, 2.0, 3.0, 4.0]
    encoder = Encoder(
        EncodingSpec(clip=1.0, quant_bits=16, weighted=True, max_weight=4.0), trees[0], 4
    )
    options = ServerOptions(
        clients=4,
        dim=encoder.dim,
        bits=encoder.bits,
        phase_timeout=20,
        join_timeout=20,
        spec=encoder.round_spec.encode(),  # the round announces what the vectors mean
    )

    async def run() -> RoundReport:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        outcomes = await asyncio.gather(
            *(
                secagg.Client(f"127.0.0.1:{port}", name=f"u{i}", insecure=True, timeout=30).submit(
                    tree, encoder=encoder, weight=w
                )
                for i, (tree, w) in enumerate(zip(trees, weights, strict=True))
            )
        )
        assert all(o.included for o in outcomes)
        return (await asyncio.wait_for(running, 60))[0]

    report = asyncio.run(run())
    assert report.total is not None
    decoded = encoder.decode(
        report.total, n_included=len(report.included), spec_digest=report.spec_digest
    )
    expected = sum(w * t["w"] for t, w in zip(trees, weights, strict=True)) / sum(weights)
    assert decoded.weighted_mean_error_bound is not None
    assert np.max(np.abs(decoded.weighted_mean["w"] - expected)) <= (
        decoded.weighted_mean_error_bound
    )
    assert decoded.total_weight == 10.0


def test_encoder_bit_width_must_match_the_round() -> None:
    from secagg.encoding import Encoder, EncodingSpec

    encoder = Encoder(EncodingSpec(clip=1.0, quant_bits=8), np.zeros(6), 3)
    options = ServerOptions(
        clients=3, dim=6, bits=encoder.bits + 4, phase_timeout=10, join_timeout=3, min_clients=2
    )
    vectors = {f"u{i}": np.full(6, 0.5) for i in range(3)}

    async def run() -> list[Outcome]:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        outcomes = await asyncio.gather(
            *(
                secagg.Client(f"127.0.0.1:{port}", name=n, insecure=True, timeout=15).submit(
                    v, encoder=encoder
                )
                for n, v in vectors.items()
            )
        )
        await asyncio.wait_for(running, 60)
        return list(outcomes)

    outcomes = asyncio.run(run())
    assert {o.reason for o in outcomes} == {"config-mismatch"}


def test_the_network_server_shares_the_round_observer() -> None:
    """The unmasking's steps reach report.json (server_steps) and the operator's observer, the
    same RoundObserver hooks simulate(observer=) feeds."""
    from secagg.protocol.messages import Round
    from secagg.protocol.observer import RoundObserver

    class Steps(RoundObserver):
        def __init__(self) -> None:
            self.events: list[tuple[str, Round, str]] = []

        def server_begin(self, round_: Round, step: str) -> None:
            self.events.append(("begin", round_, step))

        def server_end(self, round_: Round, step: str) -> None:
            self.events.append(("end", round_, step))

    heard = Steps()
    rng = np.random.default_rng(3)
    vectors = {f"u{i}": rng.integers(0, 2**16, 64).astype(np.uint32) for i in range(4)}
    options = ServerOptions(
        clients=4, dim=64, bits=16, phase_timeout=20, join_timeout=20, observer=heard
    )
    report, _outcomes = asyncio.run(_round(options, vectors))
    assert report.status == "complete"
    assert set(report.server_steps) == {"reconstruct", "remove-masks"}
    assert all(seconds >= 0 for seconds in report.server_steps.values())
    assert report.to_json()["server_steps"] == report.server_steps
    assert heard.events == [
        ("begin", Round.UNMASKING, "reconstruct"),
        ("end", Round.UNMASKING, "reconstruct"),
        ("begin", Round.UNMASKING, "remove-masks"),
        ("end", Round.UNMASKING, "remove-masks"),
    ]
