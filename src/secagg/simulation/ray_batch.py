"""The Ray actor of ``simulate(..., engine="ray")``: one batch of client sessions of a round,
answering every server message of its clients in one call (masked inputs as one partial sum)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom, RandomSource, SystemRandom
from secagg.crypto.ring import ring_mask
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import RoundConfig
from secagg.protocol.derive import round_graph
from secagg.protocol.messages import ClientMessage, MaskedInput, Round, ServerMessage, message_size
from secagg.protocol.policy import ClientPolicy

__all__ = ["BatchStep", "ClientBatch"]

_NEVER = 99  # a stop round no client reaches


@dataclass(slots=True)
class BatchStep:
    """What one actor did in one protocol round."""

    replies: dict[int, ClientMessage] = field(default_factory=dict)
    # Masked-input round only: the batch's partial sum and the other senders it covers.
    partial: tuple[int, npt.NDArray[np.unsignedinteger]] | None = None
    also_sent: list[int] = field(default_factory=list)
    clients_total: float = 0.0
    client_max: float = 0.0
    clients: int = 0
    sent: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)


class ClientBatch:
    """A batch of client sessions of one round, run inside one Ray actor."""

    def __init__(
        self,
        config: RoundConfig,
        first: int,
        rows: npt.NDArray[np.unsignedinteger],
        stops: Mapping[int, int],
        seed: bytes | None,
        policy: ClientPolicy,
        spec_digest: bytes,
    ) -> None:
        self._config = config
        self._first = first
        self._rows = rows
        self._stops = dict(stops)
        self._rng: RandomSource = SystemRandom() if seed is None else DeterministicRandom(seed)
        self._policy = policy
        self._spec_digest = spec_digest
        self._identities: dict[int, Any] = {}
        self._sessions: dict[int, ClientSession] = {}
        if config.mode == "malicious":
            from secagg.crypto.signing import SigningKey

            self._identities = {
                first + i: SigningKey.generate(self._rng) for i in range(rows.shape[0])
            }

    def public_identities(self) -> dict[int, bytes]:
        """Malicious mode: the batch's Ed25519 public keys, for the round's registry."""
        return {i: k.public_bytes for i, k in self._identities.items()}

    def open(self, registry_keys: Mapping[int, bytes] | None) -> int:
        """Create the sessions (malicious mode: with the whole round's identity registry)."""
        registry = None
        if registry_keys is not None:
            from secagg.protocol.identity import MappingRegistry

            registry = MappingRegistry(dict(registry_keys))
        config = self._config
        graph = (
            None
            if config.mode == "malicious"
            else round_graph(config.graph_seed, config.num_clients, config.degree)
        )
        for offset in range(self._rows.shape[0]):
            index = self._first + offset
            self._sessions[index] = ClientSession(
                config,
                index,
                self._rows[offset],
                rng=self._rng,
                graph=graph,
                identity=self._identities.get(index),
                registry=registry,
                policy=self._policy,
                expected_spec_digest=self._spec_digest,
            )
        self._rows = self._rows[:0]  # the sessions hold their inputs now
        return len(self._sessions)

    def start(self) -> BatchStep:
        """Round 0: every client that does not drop before it advertises its keys."""
        step = BatchStep()
        for index, session in self._sessions.items():
            if self._stops.get(index, _NEVER) <= Round.ADVERTISE_KEYS:
                continue
            self._run(step, index, session.start)
        return step

    def step(self, round_: int, outbox: Mapping[int, ServerMessage], final: bool) -> BatchStep:
        """Deliver the server's messages of one round; masked inputs come back as one sum."""
        step = BatchStep()
        for index, msg in outbox.items():
            step.received[index] = message_size(msg)
            session = self._sessions[index]
            if session.state.value in ("done", "aborted"):
                continue
            if self._stops.get(index, _NEVER) <= round_:
                continue
            self._run(step, index, functools.partial(session.receive, msg))
        if final:
            step.clients_total = step.client_max = 0.0
            step.clients = 0
        masked = {i: r for i, r in step.replies.items() if isinstance(r, MaskedInput)}
        if masked:  # an Abort (a client that gave up) still goes to the server as itself
            step.partial, step.also_sent = _partial_sum(masked, self._config.bits)
            step.replies = {i: r for i, r in step.replies.items() if i not in masked}
        return step

    def _run(self, step: BatchStep, index: int, act: Callable[[], ClientMessage | None]) -> None:
        start = time.perf_counter()
        reply = act()
        elapsed = time.perf_counter() - start
        step.clients_total += elapsed
        step.client_max = max(step.client_max, elapsed)
        step.clients += 1
        if reply is not None:
            step.replies[index] = reply
            step.sent[index] = message_size(reply)


def _partial_sum(
    replies: Mapping[int, MaskedInput], bits: int
) -> tuple[tuple[int, npt.NDArray[np.unsignedinteger]], list[int]]:
    """Add the batch's masked vectors (wrapping in the word type, as the server's sum does)."""
    senders = sorted(replies)
    total = np.zeros_like(replies[senders[0]].vector)
    for index in senders:
        np.add(total, replies[index].vector, out=total)
    if bits not in (32, 64):
        # The server refuses words above b bits; 2^b divides the word size, so reducing the
        # partial sum changes nothing mod 2^b.
        np.bitwise_and(total, ring_mask(bits), out=total)
    return (senders[0], total), senders[1:]
