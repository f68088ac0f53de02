"""A programmable malicious server that drives REAL ClientSession objects (malicious mode).

The server keeps an honest :class:`ServerSession` inside for the rounds it does not attack (so
the honest parts of a round are exactly the library's behaviour), and gives tests full control
over what each client receives:

- :meth:`MaliciousServer.start` runs round 0 on every client: keys with seed commitments,
  the list of commitments, the nonce reveals (the graph exists only after them);
- :meth:`MaliciousServer.honest_outbox` feeds the last replies to the inner server and returns
  what an honest server would send next;
- :meth:`MaliciousServer.send` delivers any messages (forged, replayed, per-client different)
  to the real clients and collects their replies.

Everything a client ever sent to the server is recorded in :attr:`MaliciousServer.received`;
:meth:`MaliciousServer.audit` turns the unmasking replies into "which holders revealed which
share of whom", the basis of every privacy assertion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.shamir import Share
from secagg.crypto.signing import SigningKey
from secagg.graph import NeighbourGraph
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import RoundConfig
from secagg.protocol.derive import derive_graph_seed, round_graph
from secagg.protocol.driver import RoundDriver
from secagg.protocol.identity import MappingRegistry
from secagg.protocol.messages import (
    Abort,
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    ConsistencySignature,
    MaskedInput,
    RevealNonce,
    Round,
    ServerMessage,
    SharesDelivery,
    UnmaskResponse,
)
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason

Outbox = dict[int, ServerMessage]
Replies = dict[int, ClientMessage]


@dataclass
class ShareAudit:
    """What the server obtained: per dealer v, the holders that revealed a share of b_v / s_sk_v."""

    seed_holders: dict[int, set[int]] = field(default_factory=dict)
    key_holders: dict[int, set[int]] = field(default_factory=dict)
    masked: set[int] = field(default_factory=set)  # clients whose masked input the server has
    masked_with: dict[int, set[int]] = field(default_factory=dict)  # v -> neighbours in v's U2

    def seed_count(self, v: int) -> int:
        return len(self.seed_holders.get(v, ()))

    def key_count(self, v: int) -> int:
        return len(self.key_holders.get(v, ()))

    def exposed(self, threshold: int) -> list[int]:
        """Clients whose input the server can unmask from what it obtained.

        It needs y_v, b_v (>= t shares) and every pairwise mask v added: for each neighbour u
        that v masked with, s_sk_v or s_sk_u (>= t shares of either).
        """
        out = []
        for v in sorted(self.masked):
            if self.seed_count(v) < threshold:
                continue
            if self.key_count(v) >= threshold or all(
                self.key_count(u) >= threshold for u in self.masked_with.get(v, ())
            ):
                out.append(v)
        return out

    def assert_private(self, threshold: int) -> None:
        """The invariants that keep every honest input hidden.

        For no client v did the server get >= t shares of both b_v and s_sk_v, and for no
        client whose masked input it holds can it remove every mask (see :meth:`exposed`).
        """
        for v in set(self.seed_holders) | set(self.key_holders):
            both = self.seed_count(v) >= threshold and self.key_count(v) >= threshold
            assert not both, f"server got >= t shares of both b_{v} and s_sk_{v}"
        assert not self.exposed(threshold), f"inputs exposed: {self.exposed(threshold)}"

    def assert_nothing_revealed(self) -> None:
        assert not self.seed_holders, f"seed shares revealed: {self.seed_holders}"
        assert not self.key_holders, f"key shares revealed: {self.key_holders}"


class MaliciousServer:
    """One malicious-mode round with real clients and a server the test script controls."""

    def __init__(
        self,
        n: int,
        *,
        dim: int = 8,
        bits: int = 32,
        degree: int | None = None,
        threshold: int | None = None,
        seed: int = 0,
        context_digest: bytes = bytes(32),
        client_digests: Mapping[int, bytes] | None = None,
        configs: Mapping[int, RoundConfig] | None = None,
        registered: Iterable[int] | None = None,
        identities: Mapping[int, SigningKey] | None = None,
        config: RoundConfig | None = None,
    ) -> None:
        self.rng = DeterministicRandom(seed)
        # ``config`` reruns an identical RoundConfig (same session id) with fresh client
        # randomness per ``seed``: the "retry" of the replay attacks.
        self.config = config or RoundConfig.create(
            n,
            dim,
            bits,
            degree=degree if degree is not None else n - 1,
            threshold=threshold,
            mode="malicious",
            context_digest=context_digest,
            rng=self.rng.fork("config"),
        )
        gen = np.random.default_rng(seed)
        self.inputs: npt.NDArray[np.uint64] = gen.integers(
            0, 1 << min(bits, 63), size=(n, dim), dtype=np.uint64
        )
        self.identities: dict[int, SigningKey] = dict(identities or {}) or {
            i: SigningKey.generate(self.rng.fork(f"id{i}")) for i in range(1, n + 1)
        }
        who = set(range(1, n + 1)) if registered is None else set(registered)
        self.registry = MappingRegistry(
            {i: k.public_bytes for i, k in self.identities.items() if i in who}
        )
        # The server's own identity: not in the registry, used for forgeries and Sybils.
        self.own_identity = SigningKey.generate(self.rng.fork("server-identity"))
        self.clients = self._clients(n, who, dict(configs or {}), dict(client_digests or {}))
        self.server = ServerSession(self.config, registry=self.registry)
        # The library's driver runs the honest steps; the script decides what clients get.
        self._driver = RoundDriver(self.server, self.clients)
        self.advertised: Replies = {}  # round 0's AdvertiseKeys replies
        self.received: list[tuple[Round, int, ClientMessage]] = []
        self.sent: list[tuple[Round, int, ServerMessage]] = []
        self.replies: dict[Round, Replies] = {}
        self.last_round = Round.ADVERTISE_KEYS

    def _clients(
        self, n: int, who: set[int], configs: dict[int, RoundConfig], digests: dict[int, bytes]
    ) -> dict[int, ClientSession]:
        clients = {}
        for i in range(1, n + 1):
            if i not in who:
                continue  # a Sybil slot: the server plays this index itself
            clients[i] = ClientSession(
                configs.get(i, self.config),
                i,
                self.inputs[i - 1],
                rng=self.rng.fork(f"c{i}"),
                identity=self.identities[i],
                registry=self.registry,
                expected_context_digest=digests.get(i),
                # Small complete-graph rounds with the rule's smallest t: weak by the default
                # floor, deliberately; these tests attack other parts of the protocol.
                policy=ClientPolicy(allow_weak_parameters=True),
            )
        return clients

    # -- driving ------------------------------------------------------------------------------

    @property
    def threshold(self) -> int:
        return self.config.threshold

    @property
    def graph(self) -> NeighbourGraph:
        """The round's graph: the inner honest server's, or (right after :meth:`start`, before
        the reveals reached it) the one the reveals give."""
        if self.server.graph_seed is not None:
            return self.server.graph
        u = next(i for i, c in self.clients.items() if c.config is self.config)
        seed = derive_graph_seed(self.config.session_id, self.nonces_for(u))
        return round_graph(seed, self.config.num_clients, self.config.degree)

    def start(self, only: Iterable[int] | None = None) -> Replies:
        """Round 0: every (or each given) client advertises its keys and seed commitment, gets
        the list of commitments and reveals its nonce; returns the reveals (feed them to
        :meth:`honest_outbox` for the key broadcast). The advertisements are in
        :attr:`advertised`.

        Clients of the main config get the inner honest server's commitment list; a client
        given another config (``configs=``), or every client when the inner server aborted,
        gets the commitments of every advertiser, under its own session id.
        """
        wanted = set(self.clients) if only is None else set(only)
        advertised: Replies = {}
        for i, client in self.clients.items():
            if i in wanted:
                advertised[i] = client.start()
        self._record(Round.ADVERTISE_KEYS, advertised)
        self.advertised = advertised
        outbox = self.honest_outbox(advertised)
        everyone = {
            u: msg.keys.commitment
            for u, msg in advertised.items()
            if isinstance(msg, AdvertiseKeys)
        }
        inner_aborted = self.server.phase is ServerPhase.ABORTED
        for u, msg in advertised.items():
            if isinstance(msg, AdvertiseKeys) and (
                inner_aborted or self.clients[u].config is not self.config
            ):
                outbox[u] = CommitmentsBroadcast(msg.session_id, everyone)
        return self.send(Round.ADVERTISE_KEYS, outbox)

    def nonces_for(self, u: int) -> dict[int, bytes]:
        """The reveals of every client on the commitment list client ``u`` was sent."""
        listed: set[int] = set()
        for _round, to, msg in self.sent:
            if to == u and isinstance(msg, CommitmentsBroadcast):
                listed = set(msg.commitments)
        return {
            v: m.nonce for _r, v, m in self.received if isinstance(m, RevealNonce) and v in listed
        }

    def honest_outbox(self, replies: Replies) -> Outbox:
        """Feed ``replies`` to the inner honest server and return what it would send next."""
        collecting = self.server.collecting
        self._driver.deliver(self.last_round if collecting is None else collecting, replies)
        return self._driver.advance()

    def send(self, round_: Round, outbox: Mapping[int, ServerMessage]) -> Replies:
        """Deliver ``outbox`` to the real clients (skipping finished ones); collect replies."""
        self.last_round = round_
        self.sent.extend((round_, i, msg) for i, msg in outbox.items())
        replies = self._driver.send(round_, outbox)
        self._record(round_, replies)
        return replies

    def run_honestly_until(self, last: Round) -> Replies:
        """Run the honest protocol through round ``last`` (inclusive); returns its replies
        (not yet handed to the inner server)."""
        replies = self.start()
        round_ = Round.ADVERTISE_KEYS
        while round_ < last:
            outbox = self.honest_outbox(replies)
            following = self.server.collecting
            if following is None:  # the inner server aborted: deliver its Abort, stop
                self.send(round_, outbox)
                return {}
            round_ = following
            replies = self.send(round_, outbox)
        return replies

    def finish_honestly(self, replies: Replies) -> None:
        """Hand the last replies to the inner honest server and run the round to its end."""
        while True:
            outbox = self.honest_outbox(replies)
            # The inner server says whose replies it collects next (round 0 has two steps).
            following = self.server.collecting
            if following is None:
                self.send(Round.UNMASKING, outbox)  # RoundComplete or Abort
                return
            replies = self.send(following, outbox)

    # -- inspection ---------------------------------------------------------------------------

    def _record(self, round_: Round, replies: Replies) -> None:
        self.replies[round_] = dict(replies)
        for i, msg in replies.items():
            self.received.append((round_, i, msg))

    def reasons(self, indices: Iterable[int] | None = None) -> dict[int, AbortReason | None]:
        wanted = self.clients if indices is None else indices
        return {i: self.clients[i].abort_reason for i in wanted}

    def assert_aborted(self, indices: Iterable[int], reason: AbortReason) -> None:
        got = self.reasons(indices)
        assert got == dict.fromkeys(got, reason), (
            f"expected {reason} from {sorted(got)}, got {got} "
            f"({ {i: self.clients[i].abort_detail for i in got} })"
        )

    def audit(self) -> ShareAudit:
        """Everything secret-bearing the server received, as holder sets per dealer."""
        out = ShareAudit()
        for _round, to, sent in self.sent:
            if isinstance(sent, SharesDelivery):
                out.masked_with.setdefault(to, set()).update(sent.ciphertexts)
        for _round, sender, msg in self.received:
            if isinstance(msg, MaskedInput):
                out.masked.add(sender)
            if not isinstance(msg, UnmaskResponse):
                continue
            for v, blob in msg.self_mask_shares.items():
                assert Share.from_bytes(blob).x == sender
                out.seed_holders.setdefault(v, set()).add(sender)
            for v, blob in msg.key_shares.items():
                assert Share.from_bytes(blob).x == sender
                out.key_holders.setdefault(v, set()).add(sender)
        return out

    def signatures(self) -> dict[int, bytes]:
        """All round-3 signatures received so far (sender -> signature)."""
        return {i: m.signature for _r, i, m in self.received if isinstance(m, ConsistencySignature)}

    def aborts(self) -> dict[int, str]:
        return {i: m.reason for _r, i, m in self.received if isinstance(m, Abort)}

    def plain_sum(self, included: Iterable[int]) -> npt.NDArray[np.uint64]:
        total = np.zeros(self.config.dim, dtype=object)
        for i in included:
            total = total + self.inputs[i - 1].astype(object)
        mask = (1 << self.config.bits) - 1
        return np.array([int(v) & mask for v in total], dtype=np.uint64)
