"""The advisory's breaks 2 and 3 over the network: real ``secagg client`` processes (and
``secagg.Client`` objects) against a misbehaving server that speaks secagg.v1.

The servers here are the library's :class:`AggregationServer` with one hook changed: they
rewrite what they send, exactly as a deviating operator could.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import secagg
from secagg.identity.registry import (
    IdentityRegistryFile,
    RegistryEntry,
    generate_identity,
    load_identity,
    load_registry,
    save_identity,
    save_registry,
)
from secagg.protocol.config import RoundConfig
from secagg.protocol.messages import (
    SERVER_SENDER,
    Abort,
    CommitmentsBroadcast,
    ServerMessage,
    UnmaskRequest,
)
from secagg.protocol.server.session import ServerSession
from secagg.transport import AggregationServer, RoundReport, ServerOptions
from tests.transport.helpers import SECAGG, Procs, random_vectors, wait_all

NAMES = [f"site-{i}" for i in range(5)]


class ReplayingServer(AggregationServer):
    """Round 1 runs honestly to the consistency check, keeps every signature and aborts (a
    'retry'). Round 2 reuses round 1's RoundConfig verbatim (same session id) and hands the
    clients round 1's signatures, matched to round 2's indices by name, over the same U3."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first: RoundConfig | None = None
        self.session_ids: list[bytes] = []
        self.names: dict[int, str] = {}
        self.stolen: dict[str, bytes] = {}
        self.replayed = 0

    async def _drive(self, slots: Any, session: ServerSession, report: RoundReport) -> None:
        self.names = {i: conn.name for i, conn in slots.holders.items()}
        if self.first is None:
            self.first = slots.config
        else:
            slots.config = self.first  # the retry reuses round 1's config verbatim
            session = ServerSession(self.first, registry=session.registry)
        self.session_ids.append(slots.config.session_id)
        await super()._drive(slots, session, report)

    def _send(self, conn: Any, msg: ServerMessage) -> int:
        if isinstance(msg, UnmaskRequest) and conn.round_no == 1:
            for index, signature in msg.signatures.items():
                self.stolen[self.names[index]] = signature
            msg = Abort(msg.session_id, SERVER_SENDER, "too-few-clients", "retrying the round")
        elif isinstance(msg, UnmaskRequest):
            replay = {i: self.stolen[n] for i, n in self.names.items() if n in self.stolen}
            msg = dataclasses.replace(msg, signatures=replay)
            self.replayed += 1
        return super()._send(conn, msg)


class EquivocatingServer(AggregationServer):
    """Shows clients 1 and 2 a commitment list without client 5 (the others get the true
    list), then continues honestly with every reveal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[str] = []

    def _send(self, conn: Any, msg: ServerMessage) -> int:
        if isinstance(msg, CommitmentsBroadcast) and conn.index in (1, 2):
            self.shown.append(conn.name)
            msg = dataclasses.replace(
                msg, commitments={v: c for v, c in msg.commitments.items() if v != 5}
            )
        return super()._send(conn, msg)


async def _round_over(server: AggregationServer, count: int) -> None:
    """Wait until the server finished ``count`` rounds (its names are free again)."""
    for _ in range(1200):
        if len(server.reports) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the server's round did not end")


def _identities(tmp: Path) -> tuple[IdentityRegistryFile, Path]:
    keys = {n: generate_identity() for n in NAMES}
    for n, key in keys.items():
        save_identity(key, tmp / f"{n}.key")
    registry = IdentityRegistryFile(RegistryEntry(keys[n].public_bytes, name=n) for n in NAMES)
    path = tmp / "registry.json"
    save_registry(registry, path)
    return registry, path


def _options(registry: IdentityRegistryFile, rounds: int, dim: int) -> ServerOptions:
    return ServerOptions(
        clients=5,
        dim=dim,
        bits=24,
        mode="malicious",
        degree=4,
        threshold=4,
        registry=registry,
        rounds=rounds,
        join_timeout=30,
        phase_timeout=10,
    )


def _join(
    procs: Procs, port: int, name: str, vector: np.ndarray, tag: str
) -> subprocess.Popen[bytes]:
    path = procs.tmp / f"{name}.npy"
    np.save(path, vector)
    return procs.spawn(
        [
            *SECAGG, "client", "--server", f"127.0.0.1:{port}", "--input", str(path),
            "--name", name, "--timeout", "60", "--insecure", "--json",
            "--allow-weak-parameters",  # n = 5 with k = t = 4: small on purpose
            "--identity", str(procs.tmp / f"{name}.key"),
            "--registry", str(procs.tmp / "registry.json"),
        ],
        procs.tmp / f"{name}-{tag}.log",
    )  # fmt: skip


def _outcome(procs: Procs, name: str, tag: str) -> dict[str, Any]:
    lines = (procs.tmp / f"{name}-{tag}.log").read_text(errors="replace").splitlines()
    return dict(json.loads(next(line for line in reversed(lines) if line.startswith("{"))))


@pytest.mark.adversarial
@pytest.mark.slow
def test_signatures_replayed_from_a_retry_with_the_same_session_id_never_count(
    procs: Procs,
) -> None:
    """`secagg client` processes, new ones for each round (so no memory of the first round
    helps them): round 2 has round 1's session id and U3, and round 1's signatures verify
    under the pre-fix message. Every client aborts with too-few-signatures: the signatures
    covered round 1's graph seed and round 1's fresh keys."""
    registry, _path = _identities(procs.tmp)
    vectors = random_vectors(NAMES, 50, 24, seed=31)

    async def scenario() -> tuple[ReplayingServer, list[RoundReport], list[int], list[int]]:
        server = ReplayingServer(
            _options(registry, rounds=2, dim=len(vectors[NAMES[0]])), "127.0.0.1:0"
        )
        port = await server.start()
        running = asyncio.create_task(server.run())
        first = [_join(procs, port, n, vectors[n], "r1") for n in NAMES]
        codes1 = await asyncio.to_thread(wait_all, first)
        await _round_over(server, 1)
        second = [_join(procs, port, n, vectors[n], "r2") for n in NAMES]
        codes2 = await asyncio.to_thread(wait_all, second)
        reports = await asyncio.wait_for(running, 120)
        return server, reports, codes1, codes2

    server, reports, codes1, codes2 = asyncio.run(scenario())
    assert server.session_ids[0] == server.session_ids[1]  # the identical config, replayed
    assert set(server.stolen) == set(NAMES)
    assert server.replayed == 5
    assert codes1 == [1] * 5
    assert codes2 == [1] * 5
    for n in NAMES:
        assert _outcome(procs, n, "r1")["reason"] == "server-aborted"
        assert _outcome(procs, n, "r2")["reason"] == "too-few-signatures"
    assert reports[1].status != "complete"
    assert reports[1].total is None


@pytest.mark.adversarial
def test_a_client_refuses_a_session_id_it_already_joined(tmp_path: Path) -> None:
    """secagg.Client in one process: the second round under the same session id is refused
    before any key is advertised (repeated-session)."""
    registry, path = _identities(tmp_path)
    loaded = load_registry(path)
    vectors = random_vectors(NAMES, 20, 24, seed=32)

    async def scenario() -> tuple[list[Any], list[Any], ReplayingServer]:
        server = ReplayingServer(
            _options(registry, rounds=2, dim=len(vectors[NAMES[0]])), "127.0.0.1:0"
        )
        port = await server.start()
        running = asyncio.create_task(server.run())

        def client(n: str) -> secagg.Client:
            return secagg.Client(
                f"127.0.0.1:{port}",
                name=n,
                insecure=True,
                timeout=30,
                identity=load_identity(tmp_path / f"{n}.key"),
                registry=loaded,
                policy=secagg.ClientPolicy(allow_weak_parameters=True),  # n = 5, k = t = 4
            )

        first = await asyncio.gather(*(client(n).submit(vectors[n]) for n in NAMES))
        await _round_over(server, 1)
        second = await asyncio.gather(*(client(n).submit(vectors[n]) for n in NAMES))
        await asyncio.wait_for(running, 120)
        return first, second, server

    first, second, server = asyncio.run(scenario())
    assert {o.reason for o in first} == {"server-aborted"}
    assert {o.reason for o in second} == {"repeated-session"}
    assert server.replayed == 0  # nobody got as far as an unmask request


@pytest.mark.adversarial
def test_equivocated_commitment_lists_make_the_shown_clients_abort(procs: Procs) -> None:
    """Clients 1 and 2 see a commitment list without client 5, then every reveal: they abort
    (inconsistent-sets) instead of deriving a graph from a list the server chose for them."""
    registry, _path = _identities(procs.tmp)
    vectors = random_vectors(NAMES, 50, 24, seed=33)

    server = EquivocatingServer(
        _options(registry, rounds=1, dim=len(vectors[NAMES[0]])), "127.0.0.1:0"
    )

    async def scenario() -> tuple[list[RoundReport], list[int]]:
        port = await server.start()
        running = asyncio.create_task(server.run())
        clients = [_join(procs, port, n, vectors[n], "r1") for n in NAMES]
        codes = await asyncio.to_thread(wait_all, clients)
        return await asyncio.wait_for(running, 120), codes

    reports, codes = asyncio.run(scenario())
    assert codes == [1] * 5
    outcomes = {n: _outcome(procs, n, "r1") for n in NAMES}
    shown = server.shown
    assert len(shown) == 2
    for n in shown:
        assert outcomes[n]["reason"] == "inconsistent-sets", outcomes[n]
        assert "not in the commitment list" in outcomes[n]["detail"]
    assert reports[0].status != "complete"
