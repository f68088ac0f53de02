"""Break 1 of the security advisory over gRPC: a server announcing k = 2, t = 1 to three clients.

The fake server (weak_params_server.py, a separate process speaking secagg.v1) shows each
client only itself and asks it to unmask itself; with t = 1 one share is the secret. Honest
clients, as ``secagg client`` processes and as ``secagg.Client`` in-process, must refuse with
``unsafe-parameters`` before revealing anything. A control run with the explicit double
opt-out shows the attack is real: the server then strips the masks off every input.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.crypto.prg import MaskPRG
from secagg.crypto.shamir import Share, reconstruct_secret
from secagg.identity.registry import (
    IdentityRegistryFile,
    RegistryEntry,
    generate_identity,
    load_identity,
    load_registry,
    save_identity,
    save_registry,
)
from secagg.protocol.derive import self_mask_key
from secagg.protocol.policy import ClientPolicy
from secagg.transport.client import Client, Outcome
from tests.transport.helpers import HERE, PY, Procs, free_port, wait_all, wait_listening

NAMES = ["site-a", "site-b", "site-c"]
DIM, BITS = 4, 16  # as in weak_params_server.py


def _identities(tmp: Path) -> Path:
    keys = {n: generate_identity() for n in NAMES}
    for n, key in keys.items():
        save_identity(key, tmp / f"{n}.key")
    registry = tmp / "registry.json"
    save_registry(
        IdentityRegistryFile(RegistryEntry(keys[n].public_bytes, name=n) for n in NAMES), registry
    )
    return registry


def _fake_server(procs: Procs, port: int) -> Path:
    out = procs.tmp / "collected.json"
    proc = procs.spawn(
        [PY, str(HERE / "weak_params_server.py"), str(port), str(out), str(len(NAMES))],
        procs.tmp / "fake-server.log",
    )
    wait_listening(port, proc)
    return out


def _collected(procs: Procs, out: Path) -> dict[str, dict[str, Any]]:
    fake = procs.started[0]
    assert wait_all([fake]) == [0], procs.log("fake-server")
    records: dict[str, dict[str, Any]] = json.loads(out.read_text())
    return records


def _strip_masks(record: dict[str, Any]) -> np.ndarray | None:
    """What the server can compute from one client's record: its input, or None."""
    shares = record.get("self_mask_shares", {})
    share = shares.get(str(record["index"]))
    if share is None or "masked" not in record:
        return None
    seed = reconstruct_secret([Share.from_bytes(bytes.fromhex(share))], 1)
    key = self_mask_key(seed, bytes.fromhex(record["session_id"]), record["index"])
    dtype = np.dtype(f"<u{record['word_bytes']}")
    vector = np.frombuffer(bytes.fromhex(record["masked"]), dtype=dtype).copy()
    MaskPRG(BITS).add_many(vector, [(key, True)])
    return vector


def _inputs() -> dict[str, np.ndarray]:
    return {n: np.arange(1, DIM + 1, dtype=np.uint32) * (i + 7) for i, n in enumerate(NAMES)}


@pytest.mark.adversarial
def test_break1_secagg_client_processes_refuse_k2_t1(procs: Procs) -> None:
    registry = _identities(procs.tmp)
    port = free_port()
    out = _fake_server(procs, port)
    vectors = _inputs()
    options = ["--insecure", "--registry", str(registry)]
    clients = [
        procs.client(port, n, vectors[n], *options, "--identity", str(procs.tmp / f"{n}.key"))
        for n in NAMES
    ]
    assert wait_all(clients) == [1, 1, 1]
    for n in NAMES:
        log = procs.log(n)
        assert "unsafe-parameters" in log
        assert "t = 1 is unsafe" in log
        assert "included" not in log.replace("not included", "")
    records = _collected(procs, out)
    assert set(records) == set(NAMES)
    for n in NAMES:
        record = records[n]
        # The client said why it left, and sent nothing else: no keys, no masked input, no
        # shares; nothing the server holds can strip a mask.
        assert record["abort"]["reason"] == "unsafe-parameters"
        assert record["frames"] == ["abort"]
        assert "self_mask_shares" not in record
        assert _strip_masks(record) is None


async def _submit_all(
    port: int, tmp: Path, registry: Path, policy: ClientPolicy | None
) -> list[Outcome]:
    vectors = _inputs()
    loaded = load_registry(registry)
    clients = [
        Client(
            f"127.0.0.1:{port}",
            name=n,
            insecure=True,
            timeout=60,
            identity=load_identity(tmp / f"{n}.key"),
            registry=loaded,
            policy=policy,
        )
        for n in NAMES
    ]
    return list(
        await asyncio.gather(*(c.submit(vectors[n]) for c, n in zip(clients, NAMES, strict=True)))
    )


@pytest.mark.adversarial
def test_break1_secagg_client_api_refuses_k2_t1(procs: Procs) -> None:
    registry = _identities(procs.tmp)
    port = free_port()
    out = _fake_server(procs, port)
    # The loud opt-out of the floor alone does not weaken the mode's threshold rule.
    weak = ClientPolicy(allow_weak_parameters=True)
    outcomes = asyncio.run(_submit_all(port, procs.tmp, registry, weak))
    assert [o.reason for o in outcomes] == ["unsafe-parameters"] * 3
    assert not any(o.included for o in outcomes)
    assert all("t = 1 is unsafe" in o.detail for o in outcomes)
    records = _collected(procs, out)
    for n in NAMES:
        assert records[n]["frames"] == ["abort"]
        assert _strip_masks(records[n]) is None


@pytest.mark.adversarial
def test_break1_control_the_attack_is_real_when_both_checks_are_switched_off(
    procs: Procs,
) -> None:
    # What happened before the fix (decode with allow_unsafe=True, no floor): every client is
    # "included in the sum with 1 clients" and the server recovers every input exactly.
    registry = _identities(procs.tmp)
    port = free_port()
    out = _fake_server(procs, port)
    off = ClientPolicy(allow_weak_parameters=True, allow_unsafe=True)
    outcomes = asyncio.run(_submit_all(port, procs.tmp, registry, off))
    assert all(o.included and o.num_included == 1 for o in outcomes)
    records = _collected(procs, out)
    vectors = _inputs()
    for n in NAMES:
        recovered = _strip_masks(records[n])
        assert recovered is not None
        np.testing.assert_array_equal(recovered, vectors[n])
