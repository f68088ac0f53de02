"""Issue 11.1: every result field means one thing, weighted or not, simulated or networked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

import secagg
from secagg.encoding import Encoder, EncodingSpec
from secagg.errors import EncodingError
from secagg.transport import AggregationServer, RoundReport, ServerOptions

INPUTS = [[0.1], [0.2], [0.3]]
WEIGHTS = [1.0, 1.0, 2.0]


def test_weighted_simulation_fields() -> None:
    result = secagg.simulate(INPUTS, clip=1.0, quant_bits=16, weights=WEIGHTS, seed=0)
    bound = result.decoded.error_bound if result.decoded else 0.0
    assert result.weighted_sum[0] == pytest.approx(0.9, abs=bound)  # 0.1 + 0.2 + 2 * 0.3
    assert result.total_weight == pytest.approx(4.0, abs=1e-3)
    assert result.weighted_mean[0] == pytest.approx(0.225, abs=1e-3)
    # sum(x) and its mean over n were never aggregated: asking for them is an error, not 0.9.
    with pytest.raises(EncodingError, match="sum is not available: this round was weighted"):
        _ = result.sum
    with pytest.raises(EncodingError, match="mean is not available: this round was weighted"):
        _ = result.mean


def test_unweighted_simulation_fields() -> None:
    result = secagg.simulate(INPUTS, clip=1.0, quant_bits=16, seed=0)
    assert result.decoded is not None
    bound = result.decoded.error_bound
    assert result.sum[0] == pytest.approx(0.6, abs=bound)
    assert result.mean[0] == pytest.approx(0.2, abs=result.decoded.mean_error_bound)
    for name in ("weighted_sum", "total_weight", "weighted_mean"):
        with pytest.raises(EncodingError, match="this round was not weighted"):
            getattr(result, name)


def test_decoded_result_flat_fields_follow_the_same_rule() -> None:
    enc = Encoder(EncodingSpec(clip=1.0, weighted=True, max_weight=2.0), np.zeros(1), 3)
    total = sum(
        enc.encode(np.array(x), weight=w).astype(np.uint64)
        for x, w in zip(INPUTS, WEIGHTS, strict=True)
    ) % (1 << enc.bits)
    res = enc.decode(total, n_included=3)
    assert res.weighted_sum_flat[0] == pytest.approx(0.9, abs=res.error_bound)
    for name in ("sum_flat", "mean_flat", "mean_error_bound"):
        with pytest.raises(EncodingError):
            getattr(res, name)


def _network_round(spec: EncodingSpec, weights: list[float] | None) -> tuple[Encoder, RoundReport]:
    trees = [np.array(x) for x in INPUTS]
    encoder = Encoder(spec, trees[0], len(trees))
    options = ServerOptions(
        clients=3,
        dim=encoder.dim,
        bits=encoder.bits,
        phase_timeout=20,
        join_timeout=20,
        spec=encoder.round_spec.encode(),
    )

    async def run() -> RoundReport:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        outcomes = await asyncio.gather(
            *(
                secagg.Client(f"127.0.0.1:{port}", name=f"u{i}", insecure=True, timeout=30).submit(
                    tree, encoder=encoder, weight=None if weights is None else weights[i]
                )
                for i, tree in enumerate(trees)
            )
        )
        assert all(o.included for o in outcomes)
        return (await asyncio.wait_for(running, 60))[0]

    return encoder, asyncio.run(run())


def test_weighted_fields_over_the_network() -> None:
    spec = EncodingSpec(clip=1.0, quant_bits=16, weighted=True, max_weight=2.0)
    encoder, report = _network_round(spec, WEIGHTS)
    assert report.total is not None
    res = encoder.decode(
        report.total, n_included=len(report.included), spec_digest=report.spec_digest
    )
    assert res.weighted_sum[0] == pytest.approx(0.9, abs=res.error_bound)
    assert res.total_weight == pytest.approx(4.0, abs=res.total_weight_error_bound)
    assert res.weighted_mean is not None
    assert res.weighted_mean[0] == pytest.approx(0.225, abs=1e-3)
    with pytest.raises(EncodingError, match="this round was weighted"):
        _ = res.mean


def test_unweighted_fields_over_the_network() -> None:
    encoder, report = _network_round(EncodingSpec(clip=1.0, quant_bits=16), None)
    res = report.decode(encoder)  # the round's own spec digest and included count
    assert res.sum[0] == pytest.approx(0.6, abs=res.error_bound)
    assert res.mean[0] == pytest.approx(0.2, abs=res.mean_error_bound)
    with pytest.raises(EncodingError, match="not weighted"):
        _ = res.weighted_mean


def test_the_cli_writes_only_the_weighted_fields_of_a_weighted_round(tmp_path: Path) -> None:
    from secagg.cli.decoded_output import write_decoded

    result = secagg.simulate(INPUTS, clip=1.0, quant_bits=16, weights=WEIGHTS, seed=0)
    spec = EncodingSpec(clip=1.0, quant_bits=16, weighted=True, max_weight=max(WEIGHTS))
    encoder = Encoder(spec, np.zeros(1), len(INPUTS))
    assert encoder.spec_digest == result.config.spec_digest  # simulate bound this very spec
    report = RoundReport(
        round=1,
        included=["a", "b", "c"],
        total=result.total,
        spec=encoder.round_spec.encode(),
        spec_digest=result.config.spec_digest,
    )
    summary = write_decoded(tmp_path, report)
    assert summary is not None
    decoded = np.load(tmp_path / "decoded.npz")
    assert sorted(decoded.files) == ["total_weight", "weighted_mean", "weighted_sum"]
    assert decoded["weighted_mean"][0] == pytest.approx(0.225, abs=1e-3)
    assert decoded["weighted_sum"][0] == pytest.approx(0.9, abs=1e-3)
    assert summary["total_weight"] == pytest.approx(4.0, abs=1e-3)
