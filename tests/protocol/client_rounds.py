"""Rounds of real client sessions in either mode, and a client saved and restored after every
message (the client-side tests of save/restore and of the transition table use both)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.shamir import Share
from secagg.crypto.signing import SigningKey
from secagg.graph import Mode
from secagg.protocol.client.context import HeldShares
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.config import RoundConfig
from secagg.protocol.identity import MappingRegistry
from secagg.protocol.messages import ClientMessage, ServerMessage
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason
from tests.protocol.conftest import Harness, make_harness

# Tiny complete-graph rounds with the rule's smallest t: weak by the default floor, on purpose.
WEAK = ClientPolicy(allow_weak_parameters=True)
RestoreArgs = dict[str, Any]


def make_round(
    mode: Mode,
    n: int,
    *,
    seed: int = 0,
    stops: dict[int, Any] | None = None,
    dim: int = 6,
    bits: int = 16,
) -> tuple[Harness, dict[int, RestoreArgs]]:
    """A round of n real clients and an honest server; per client, what restore() needs."""
    if mode == "semi-honest":
        h = make_harness(n, dim, bits, seed=seed, stops=stops)
        return h, {i: {"policy": WEAK} for i in h.clients}
    rng = DeterministicRandom(seed)
    config = RoundConfig.create(n, dim, bits, degree=n - 1, mode=mode, rng=rng.fork("config"))
    identities = {i: SigningKey.generate(rng.fork(f"id{i}")) for i in range(1, n + 1)}
    registry = MappingRegistry({i: k.public_bytes for i, k in identities.items()})
    inputs = np.random.default_rng(seed).integers(0, 1 << bits, size=(n, dim), dtype=np.uint64)
    args = {
        i: {"identity": identities[i], "registry": registry, "policy": WEAK}
        for i in range(1, n + 1)
    }
    clients = {
        i: ClientSession(config, i, inputs[i - 1], rng=rng.fork(f"c{i}"), **args[i])
        for i in range(1, n + 1)
    }
    server = ServerSession(config, registry=registry)
    return Harness(config, inputs, clients, server, dict(stops or {})), args


class Reloading:
    """A client that lives only as bytes between messages: after construction and after every
    start()/receive() it is saved, and the next call goes to a fresh restored object.
    ``replace=False`` only records the bytes (the live object goes on)."""

    def __init__(self, session: ClientSession, args: RestoreArgs, *, replace: bool = True) -> None:
        self.args = args
        self.replace = replace
        self.blobs: list[bytes] = []
        self.secrets: set[bytes] = set()
        self.session = session
        self._reload()

    @property
    def state(self) -> ClientState:
        return self.session.state

    @property
    def abort_reason(self) -> AbortReason | None:
        return self.session.abort_reason

    def start(self) -> ClientMessage:
        reply = self.session.start()
        self._reload()
        return reply

    def receive(self, msg: ServerMessage) -> ClientMessage | None:
        reply = self.session.receive(msg)
        self._reload()
        return reply

    def _reload(self) -> None:
        self.secrets |= secrets_of(self.session)
        blob = self.session.save()
        self.blobs.append(blob)
        if not self.replace:
            return
        rng = DeterministicRandom(f"reload-{self.session.index}-{len(self.blobs)}")
        self.session = ClientSession.restore(blob, rng=rng, **self.args)


def secrets_of(session: ClientSession) -> set[bytes]:
    """The round secrets the session's current state holds, as bytes: private keys, the
    self-mask seed, shares and share keys."""
    state = session._state
    out: set[bytes] = set()
    for f in dataclasses.fields(state):  # type: ignore[arg-type]
        value = getattr(state, f.name)
        if isinstance(value, X25519KeyPair):
            out.add(value.private_bytes())
        elif isinstance(value, HeldShares):
            out |= {value.key_share.to_bytes(), value.seed_share.to_bytes()}
        elif isinstance(value, Share):
            out.add(value.to_bytes())
        elif f.name == "seed":
            out.add(value)
        elif f.name == "share_keys":
            out |= set(value.values())
    return out


def outcome(h: Harness) -> tuple[object, ...]:
    """What a round ended with: the server's phase and result or reason, who was dropped
    (and why), and every client's final state and abort reason."""
    server = h.server
    if server.phase is ServerPhase.DONE:
        result = server.result
        ending: object = (result.included, result.total.tolist())
    else:
        ending = server.abort_reason
    dropped = {i: (r, reason) for i, (r, reason, _detail) in server.dropped().items()}
    clients = {i: (c.state, c.abort_reason) for i, c in h.clients.items()}
    return server.phase, ending, dropped, clients
