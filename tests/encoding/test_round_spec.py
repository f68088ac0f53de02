"""Issue 11.3: the round carries what its vectors mean; a mismatched encoding fails loudly."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import secagg
from secagg.crypto.entropy import DeterministicRandom
from secagg.encoding import DPConfig, Encoder, EncodingSpec
from secagg.encoding.round_spec import RAW_SPEC_DIGEST, RoundSpec, spec_digest
from secagg.errors import ConfigError, SpecMismatchError
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import RoundConfig
from secagg.protocol.messages import Abort
from secagg.reasons import AbortReason
from secagg.transport import ANNOUNCED, AggregationServer, Outcome, RoundReport, ServerOptions

N = 3
INPUTS = [np.array([0.1, 0.2]), np.array([0.2, 0.3]), np.array([0.3, 0.1])]


def _encoder(clip: float, **kw: Any) -> Encoder:
    return Encoder(EncodingSpec(clip=clip, quant_bits=16, **kw), INPUTS[0], N)


# -- the spec encoding ----------------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip


@given(
    st.text(min_size=1, max_size=10).filter(lambda k: k != "raw"),
    st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in ("kind", "version")), json_values
    ),
)
def test_spec_encoding_is_canonical_and_round_trips(kind: str, fields: dict[str, Any]) -> None:
    spec = RoundSpec(kind, fields)
    data = spec.encode()
    assert RoundSpec.decode(data) == spec
    assert RoundSpec.decode(data).encode() == data
    assert spec.digest == spec_digest(data) != RAW_SPEC_DIGEST


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"kind": "encoding", "version": 1}', "not canonical"),
        (b'{"version":1,"kind":"encoding"}', "not canonical"),
        (b'{"kind":"encoding","version":2}', "version must be 1"),
        (b'{"kind":"raw","version":1}', "kind must be"),
        (b"[1]", "JSON object"),
        (b"\xff", "not ASCII JSON"),
    ],
)
def test_non_canonical_or_unknown_specs_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RoundSpec.decode(data)


def test_raw_rounds_have_the_zero_digest() -> None:
    assert spec_digest(b"") == RAW_SPEC_DIGEST == bytes(32)


def test_equal_encoding_specs_have_one_encoding() -> None:
    assert _encoder(1).round_spec.encode() == _encoder(1.0).round_spec.encode()
    assert b'"clip":1.0' in _encoder(1).round_spec.encode()


def test_every_setting_changes_the_digest() -> None:
    base = _encoder(1.0).spec_digest
    others = [
        _encoder(2.0),
        Encoder(EncodingSpec(clip=1.0, quant_bits=15), INPUTS[0], N),
        _encoder(1.0, clip_mode="l2"),
        _encoder(1.0, weighted=True, max_weight=2.0),
        _encoder(1.0, report_clipping=True),
        _encoder(1.0, dp=DPConfig(noise_stddev=0.5)),
        Encoder(EncodingSpec(clip=1.0, quant_bits=16), INPUTS[0], N + 1),
        Encoder(EncodingSpec(clip=1.0, quant_bits=16), INPUTS[0], N, bits=30),
    ]
    digests = {e.spec_digest for e in others}
    assert base not in digests
    assert len(digests) == len(others)


def test_a_client_can_take_the_announced_spec() -> None:
    announced = _encoder(1.0, weighted=True, max_weight=2.0).round_spec.encode()
    taken = Encoder.from_round_spec(announced, INPUTS[0])
    assert taken.spec_digest == spec_digest(announced)
    with pytest.raises(SpecMismatchError, match="D=3"):
        Encoder.from_round_spec(announced, np.zeros(5))  # other tree: other D


def test_the_spec_digest_enters_the_session_id() -> None:
    rng = DeterministicRandom(1)
    config = RoundConfig.create(3, 2, 16, degree=2, rng=rng)
    other = RoundConfig(**{**_fields(config), "spec_digest": _encoder(1.0).spec_digest})
    assert other.session_id != config.session_id
    assert RoundConfig.decode(other.encode()) == other
    assert len(other.encode()) == 155  # 123 before the spec digest


def _fields(config: RoundConfig) -> dict[str, Any]:
    names = ("num_clients", "threshold", "degree", "dim", "bits", "mode", "round_id")
    return {n: getattr(config, n) for n in (*names, "graph_seed", "context_digest")}


# -- sans-IO: clients refuse, decoders refuse ------------------------------------------------


def test_clip_1_vs_2_have_the_same_bit_width_so_only_the_spec_tells_them_apart() -> None:
    assert _encoder(1.0).bits == _encoder(2.0).bits
    assert _encoder(1.0).dim == _encoder(2.0).dim


def test_client_session_refuses_a_round_with_another_spec() -> None:
    clients_enc, server_enc = _encoder(1.0), _encoder(2.0)
    config = RoundConfig.create(
        N, clients_enc.dim, clients_enc.bits, degree=2, spec_digest=server_enc.spec_digest
    )
    session = ClientSession(
        config, 1, clients_enc.encode(INPUTS[0]), expected_spec_digest=clients_enc.spec_digest
    )
    first = session.start()
    assert isinstance(first, Abort)
    assert session.abort_reason is AbortReason.SPEC_MISMATCH


def test_simulate_binds_its_spec_and_decoding_with_another_clip_fails() -> None:
    result = secagg.simulate(INPUTS, clip=1.0, quant_bits=16, seed=0)
    assert result.config.spec_digest == _encoder(1.0).spec_digest
    assert result.mean == pytest.approx([0.2, 0.2], abs=1e-3)
    # Before: clip=2.0 decoded these vectors to a mean of 0.4 without a word.
    with pytest.raises(SpecMismatchError, match="spec digest differs"):
        _encoder(2.0).decode(result.total, 3, spec_digest=result.config.spec_digest)
    assert _encoder(1.0).decode(
        result.total, 3, spec_digest=result.config.spec_digest
    ).mean_flat == pytest.approx([0.2, 0.2], abs=1e-3)


def test_integer_simulations_carry_the_raw_digest() -> None:
    assert secagg.simulate([[1], [2]], bits=8, seed=0).config.spec_digest == RAW_SPEC_DIGEST


# -- over gRPC --------------------------------------------------------------------------------


def _network(
    options: ServerOptions,
    encoder: Encoder | Literal["announced"],
    weights: list[float] | None = None,
) -> tuple[RoundReport, list[Outcome]]:
    async def run() -> tuple[RoundReport, list[Outcome]]:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        outcomes = await asyncio.gather(
            *(
                secagg.Client(f"127.0.0.1:{port}", name=f"u{i}", insecure=True, timeout=20).submit(
                    x,
                    encoder=encoder,
                    weight=None if weights is None else weights[i],
                )
                for i, x in enumerate(INPUTS)
            )
        )
        return (await asyncio.wait_for(running, 60))[0], list(outcomes)

    return asyncio.run(run())


def _options(spec: bytes, bits: int) -> ServerOptions:
    dim = json.loads(spec)["dim"] if spec else INPUTS[0].size  # the server declares D
    return ServerOptions(
        clients=N, dim=dim, bits=bits, phase_timeout=10, join_timeout=10, spec=spec
    )


def test_over_grpc_clients_refuse_a_server_announcing_clip_2() -> None:
    clients_enc, server_enc = _encoder(1.0), _encoder(2.0)
    report, outcomes = _network(
        _options(server_enc.round_spec.encode(), server_enc.bits), clients_enc
    )
    assert {o.reason for o in outcomes} == {"spec-mismatch"}
    assert all("clip: 2.0 vs 1.0" in o.detail for o in outcomes)
    assert report.status == "aborted"
    assert report.total is None


def test_over_grpc_an_encoder_refuses_a_raw_round() -> None:
    enc = _encoder(1.0)
    _report, outcomes = _network(_options(b"", enc.bits), enc)
    assert {o.reason for o in outcomes} == {"spec-mismatch"}
    assert "raw integers" in outcomes[0].detail


def test_over_grpc_the_sum_decodes_only_with_the_announced_spec() -> None:
    enc = _encoder(1.0)
    report, outcomes = _network(_options(enc.round_spec.encode(), enc.bits), enc)
    assert all(o.included for o in outcomes)
    assert report.total is not None
    assert report.spec_digest == enc.spec_digest
    assert report.to_json()["spec"]["clip"] == 1.0
    with pytest.raises(SpecMismatchError):
        _encoder(2.0).decode(report.total, 3, spec_digest=report.spec_digest)
    with pytest.raises(SpecMismatchError):
        report.decode(_encoder(2.0))
    taken = Encoder.from_round_spec(report.spec, INPUTS[0])
    res = taken.decode(report.total, 3, spec_digest=report.spec_digest)
    assert res.mean_flat == pytest.approx([0.2, 0.2], abs=res.mean_error_bound)


def test_server_options_refuse_a_spec_that_contradicts_them() -> None:
    enc = _encoder(1.0)
    with pytest.raises(ConfigError, match="b="):
        ServerOptions(clients=N, dim=enc.dim, bits=enc.bits + 1, spec=enc.round_spec.encode())
    with pytest.raises(ConfigError, match="at most 3 clients"):
        ServerOptions(clients=N + 1, dim=enc.dim, bits=enc.bits, spec=enc.round_spec.encode())
    with pytest.raises(ConfigError, match="D="):
        ServerOptions(clients=N, dim=enc.dim + 1, bits=enc.bits, spec=enc.round_spec.encode())


def test_over_grpc_clients_can_take_the_announced_spec() -> None:
    announced = _encoder(1.0, weighted=True, max_weight=4.0)
    weights = [1.0, 1.0, 2.0]
    report, outcomes = _network(
        _options(announced.round_spec.encode(), announced.bits), ANNOUNCED, weights
    )
    assert all(o.included for o in outcomes), outcomes
    assert report.total is not None
    res = announced.decode(report.total, 3, spec_digest=report.spec_digest)
    expected = sum(w * x for w, x in zip(weights, INPUTS, strict=True)) / sum(weights)
    assert res.weighted_mean_flat == pytest.approx(expected, abs=res.weighted_mean_error_bound)


def test_over_grpc_taking_the_announced_spec_of_a_raw_round_fails_loudly() -> None:
    options = ServerOptions(clients=N, bits=16, dim=3, phase_timeout=10, join_timeout=10)
    _report, outcomes = _network(options, ANNOUNCED)
    assert {o.reason for o in outcomes} == {"spec-mismatch"}
    assert "raw integers" in outcomes[0].detail


def test_over_grpc_any_kind_of_spec_binds_pre_encoded_vectors() -> None:
    """The mechanism is generic: e.g. an analytics query's spec, with integer vectors."""
    query = RoundSpec("query", {"buckets": [0, 10, 100], "cap": 1})
    other = RoundSpec("query", {"buckets": [0, 5, 100], "cap": 1})
    options = ServerOptions(  # complete graph, t = 3: the three that stay finish the round
        clients=5, degree=4, bits=8, dim=3, phase_timeout=10, join_timeout=10, spec=query.encode()
    )
    mine = {"a": query, "b": query, "e": query, "c": other, "d": b""}

    async def run() -> tuple[RoundReport, dict[str, Outcome]]:
        server = AggregationServer(options, "127.0.0.1:0")
        port = await server.start()
        running = asyncio.create_task(server.run())
        outcomes = await asyncio.gather(
            *(
                secagg.Client(
                    f"127.0.0.1:{port}",
                    name=n,
                    insecure=True,
                    timeout=20,
                    # n = 5 with t = 3, small on purpose: below a default client's floor
                    policy=secagg.ClientPolicy(allow_weak_parameters=True),
                ).submit(np.array([1, 0, 1], dtype=np.uint32), spec=s)
                for n, s in mine.items()
            )
        )
        return (await asyncio.wait_for(running, 60))[0], {o.name: o for o in outcomes}

    report, outcomes = asyncio.run(run())
    assert outcomes["a"].included
    assert outcomes["b"].included
    assert outcomes["c"].reason == "spec-mismatch"
    assert "buckets: [0, 10, 100] vs [0, 5, 100]" in outcomes["c"].detail
    assert outcomes["d"].reason == "spec-mismatch"
    assert report.spec_digest == query.digest
    assert report.total is not None
    assert report.total.tolist() == [3, 0, 3]


def test_a_client_refuses_a_non_canonical_spec_before_connecting() -> None:
    client = secagg.Client("127.0.0.1:1", insecure=True)
    with pytest.raises(ConfigError, match="not canonical"):
        client.submit_sync(np.zeros(2, dtype=np.uint32), spec=b'{"kind": "query", "version": 1}')
