"""`secagg serve --spec`: a real server process announces what the vectors mean (issue 11.3)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import secagg
from secagg.encoding import Encoder, EncodingSpec
from secagg.errors import SpecMismatchError
from secagg.transport import Outcome
from tests.transport.helpers import Procs, cleanup, free_port, wait_all

TREE = np.array([0.1, 0.2, 0.3, 0.4])


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        cleanup(p)


def _encoder(clip: float) -> Encoder:
    return Encoder(EncodingSpec(clip=clip, quant_bits=12), TREE, 3)


def test_serve_announces_its_spec_file_and_refuses_other_encoders(
    procs: Procs, tmp_path: Path
) -> None:
    announced = _encoder(2.0)
    # A hand-written file: any layout, clip written as an integer; the server canonicalizes.
    fields = json.loads(announced.round_spec.encode())
    fields["clip"] = 2
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(fields, indent=2))
    port = free_port()
    server = procs.serve(port, "--clients", "3", "--spec", str(spec_file), "--insecure")

    async def clients() -> list[Outcome]:
        return list(
            await asyncio.gather(
                *(
                    secagg.Client(f"127.0.0.1:{port}", name=name, insecure=True, timeout=30).submit(
                        TREE * (i + 1) / 4, encoder=enc
                    )
                    for i, (name, enc) in enumerate(
                        [("a", announced), ("b", announced), ("odd", _encoder(1.0))]
                    )
                )
            )
        )

    outcomes = {o.name: o for o in asyncio.run(clients())}
    assert wait_all([server]) == [0]
    assert outcomes["odd"].reason == "spec-mismatch"
    assert "clip: 2.0 vs 1.0" in outcomes["odd"].detail
    assert outcomes["a"].included
    assert outcomes["b"].included
    report = procs.report()
    assert report["spec"]["clip"] == 2.0
    assert bytes.fromhex(report["spec_digest"]) == announced.spec_digest
    assert report["bits"] == announced.bits
    assert report["dim"] == announced.dim
    total, digest = procs.total(), bytes.fromhex(report["spec_digest"])
    with pytest.raises(SpecMismatchError):
        _encoder(1.0).decode(total, 2, spec_digest=digest)
    res = announced.decode(total, 2, spec_digest=digest)
    np.testing.assert_allclose(res.sum_flat, TREE * 3 / 4, atol=res.error_bound)
    # The server decoded it too, with the spec it announced.
    decoded = np.load(procs.tmp / "server-out" / "decoded.npz")
    assert sorted(decoded.files) == ["mean", "sum"]
    np.testing.assert_allclose(decoded["sum"], TREE * 3 / 4, atol=res.error_bound)
    np.testing.assert_allclose(decoded["mean"], TREE * 3 / 8, atol=res.mean_error_bound)
    assert report["decoded"]["n_included"] == 2


def test_serve_without_a_spec_reports_a_raw_round_and_keeps_the_old_flag(procs: Procs) -> None:
    port = free_port()
    server = procs.serve(
        port, "--clients", "2", "--dim", "4", "--bits", "8", "--insecure", "--dropout-rate", "0.1"
    )
    vectors = {n: np.arange(4, dtype=np.uint32) for n in ("a", "b")}
    clients = [procs.client(port, n, v, "--insecure") for n, v in vectors.items()]
    assert wait_all([*clients, server]) == [0, 0, 0]
    report = procs.report()
    assert report["spec"] is None
    assert report["spec_digest"] == "00" * 32
    assert "--dropout-rate is now --design-dropout-rate" in procs.log("server")


def test_cli_clients_encode_floats_with_the_announced_weighted_spec(
    procs: Procs, tmp_path: Path
) -> None:
    announced = Encoder(
        EncodingSpec(clip=1.0, quant_bits=12, weighted=True, max_weight=10.0), TREE, 3
    )
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(announced.round_spec.encode())
    port = free_port()
    server = procs.serve(port, "--clients", "3", "--spec", str(spec_file), "--insecure")
    trees = {"a": TREE, "b": -TREE, "c": TREE / 2}
    weights = {"a": 1.0, "b": 2.0, "c": 4.0}
    clients = [
        procs.client(
            port, n, trees[n], "--insecure", "--announced-encoding", "--weight", str(weights[n])
        )
        for n in trees
    ]
    assert wait_all([*clients, server]) == [0, 0, 0, 0]
    decoded = np.load(procs.tmp / "server-out" / "decoded.npz")
    assert "sum" not in decoded.files  # a weighted round never aggregated sum(x)
    expected = sum(weights[n] * trees[n] for n in trees) / sum(weights.values())
    bound = procs.report()["decoded"]["weighted_mean_error_bound"]
    np.testing.assert_allclose(decoded["weighted_mean"], expected, atol=bound)
    assert decoded["total_weight"][0] == pytest.approx(7.0, abs=0.01)
