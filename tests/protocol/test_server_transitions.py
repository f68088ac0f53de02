"""The server's (state, message) transition table, walked whole, and the state objects' rules.

Every client message type is tried in every server state, from a client that took part in the
round so far: the outcome is "accepted" or "dropped with <reason>" in a collecting state and
"ignored" in a terminal one, never an exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.shamir import Share
from secagg.crypto.signing import SigningKey
from secagg.errors import MalformedMessageError
from secagg.protocol.client.session import ClientSession
from secagg.protocol.config import Mode, RoundConfig
from secagg.protocol.driver import RoundDriver, Schedule, run_round
from secagg.protocol.identity import MappingRegistry
from secagg.protocol.messages import (
    Abort,
    AdvertiseKeys,
    ClientMessage,
    ConsistencySignature,
    EncryptedShares,
    MaskedInput,
    RevealNonce,
    Round,
    UnmaskResponse,
)
from secagg.protocol.policy import ClientPolicy
from secagg.protocol.server import r4_unmask
from secagg.protocol.server.r1_shares import CIPHERTEXT_BYTES
from secagg.protocol.server.session import ServerSession
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import DropReason

N, DIM, BITS = 6, 5, 16
ME = 1  # the client whose messages are tried

P = ServerPhase
ACCEPTED, IGNORED = "accepted", "ignored"
WRONG, DUP, ABORTED_BY_CLIENT = (
    DropReason.WRONG_ROUND,
    DropReason.DUPLICATE,
    DropReason.CLIENT_ABORTED,
)
KINDS = (
    AdvertiseKeys,
    RevealNonce,
    EncryptedShares,
    MaskedInput,
    ConsistencySignature,
    UnmaskResponse,
    Abort,
)
_TERMINAL = dict.fromkeys(KINDS, IGNORED)


def _row(*outcomes: object) -> dict[type, object]:
    return dict(zip(KINDS, outcomes, strict=True))


# Columns: AdvertiseKeys, RevealNonce, EncryptedShares, MaskedInput, ConsistencySignature,
# UnmaskResponse, Abort.
TABLE: dict[Mode, dict[ServerPhase, dict[type, object]]] = {
    "semi-honest": {
        P.COLLECT_KEYS: _row(ACCEPTED, WRONG, WRONG, WRONG, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_SHARES: _row(DUP, WRONG, ACCEPTED, WRONG, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_MASKED: _row(DUP, WRONG, DUP, ACCEPTED, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_UNMASK: _row(DUP, WRONG, DUP, DUP, WRONG, ACCEPTED, ABORTED_BY_CLIENT),
        P.DONE: _TERMINAL,
        P.ABORTED: _TERMINAL,
    },
    "malicious": {
        P.COLLECT_KEYS: _row(ACCEPTED, WRONG, WRONG, WRONG, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_REVEALS: _row(DUP, ACCEPTED, WRONG, WRONG, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_SHARES: _row(DUP, DUP, ACCEPTED, WRONG, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_MASKED: _row(DUP, DUP, DUP, ACCEPTED, WRONG, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_SIGNATURES: _row(DUP, DUP, DUP, DUP, ACCEPTED, WRONG, ABORTED_BY_CLIENT),
        P.COLLECT_UNMASK: _row(DUP, DUP, DUP, DUP, DUP, ACCEPTED, ABORTED_BY_CLIENT),
        P.DONE: _TERMINAL,
        P.ABORTED: _TERMINAL,
    },
}


def _round(mode: Mode) -> tuple[ServerSession, dict[int, ClientSession]]:
    """A fresh round; the same seed gives the same keys, messages and signatures every time."""
    rng = DeterministicRandom(f"transitions-{mode}")
    config = RoundConfig.create(N, DIM, BITS, degree=N - 1, mode=mode, rng=rng.fork("config"))
    registry = identities = None
    if mode == "malicious":
        identities = {i: SigningKey.generate(rng.fork(f"id{i}")) for i in range(1, N + 1)}
        registry = MappingRegistry({i: k.public_bytes for i, k in identities.items()})
    inputs = np.arange(N * DIM, dtype=np.uint16).reshape(N, DIM)
    clients = {
        i: ClientSession(
            config,
            i,
            inputs[i - 1],
            rng=rng.fork(f"c{i}"),
            identity=None if identities is None else identities[i],
            registry=registry,
            policy=ClientPolicy(allow_weak_parameters=True),  # a tiny round, deliberately
        )
        for i in range(1, N + 1)
    }
    return ServerSession(config, registry=registry), clients


def _messages(mode: Mode) -> dict[type, ClientMessage]:
    """Every message client ME sends in an undisturbed round, by type (plus the ones its mode
    never makes, built by hand, and an Abort)."""
    server, clients = _round(mode)
    sent: dict[type, ClientMessage] = {}

    def record(_round: Round, index: int, msg: ClientMessage) -> ClientMessage:
        if index == ME:
            sent[type(msg)] = msg
        return msg

    run_round(server, clients, intercept=record)
    assert server.phase is P.DONE
    sid = server.config.session_id
    sent.setdefault(RevealNonce, RevealNonce(sid, ME, bytes(32)))
    sent.setdefault(ConsistencySignature, ConsistencySignature(sid, ME, bytes(64)))
    sent[Abort] = Abort(sid, ME, "client-test", "going away")
    return sent


def _server_in(mode: Mode, phase: ServerPhase) -> ServerSession:
    """A round's server in ``phase``, the clients' messages for it not yet delivered."""
    server, clients = _round(mode)
    schedule = None
    if phase is P.ABORTED:  # everyone but ME leaves after round 0: too few to go on
        schedule = Schedule(dict.fromkeys(range(2, N + 1), Round.SHARE_KEYS))
    driver = RoundDriver(server, clients, schedule)
    round_, replies = Round.ADVERTISE_KEYS, driver.start()
    while server.phase is not phase:
        assert not server.finished or phase in (P.DONE, P.ABORTED), server.phase
        round_, replies = driver.step(round_, replies)
    return server


CASES = [(mode, phase, kind) for mode, rows in TABLE.items() for phase in rows for kind in KINDS]


@pytest.fixture(scope="module")
def messages() -> dict[Mode, dict[type, ClientMessage]]:
    return {mode: _messages(mode) for mode in TABLE}


@pytest.mark.adversarial
@pytest.mark.parametrize(
    ("mode", "phase", "kind"), CASES, ids=[f"{m}-{p.value}-{k.__name__}" for m, p, k in CASES]
)
def test_transition_table(
    messages: dict[Mode, dict[type, ClientMessage]],
    mode: Mode,
    phase: ServerPhase,
    kind: type,
) -> None:
    server = _server_in(mode, phase)
    record = server.clients[ME]
    before = (record.reason, record.completed, server.phase, server.active())
    server.receive(messages[mode][kind])  # never raises
    expected = TABLE[mode][phase][kind]
    if expected == IGNORED:
        assert (record.reason, record.completed, server.phase, server.active()) == before
    elif expected == ACCEPTED:
        assert record.active, (record.reason, record.detail)
        assert ME not in server.expected()
        assert server.phase is phase
    else:
        assert record.reason is expected, (record.reason, record.detail)
        assert record.dropped_in is server.collecting
        assert server.phase is phase


def test_the_table_covers_every_state_of_each_mode() -> None:
    # COLLECT_REVEALS and COLLECT_SIGNATURES exist only in malicious mode.
    assert set(TABLE["malicious"]) == set(ServerPhase)
    assert set(TABLE["semi-honest"]) == set(ServerPhase) - {
        P.COLLECT_REVEALS,
        P.COLLECT_SIGNATURES,
    }


@pytest.mark.parametrize(
    ("mode", "steps"),
    [
        ("semi-honest", [Round.SHARE_KEYS, Round.MASKED_INPUT, Round.UNMASKING]),
        ("malicious", [Round.ADVERTISE_KEYS, *list(Round)[1:]]),
    ],
)
def test_the_session_says_which_round_it_collects(mode: Mode, steps: list[Round]) -> None:
    server, clients = _round(mode)
    driver = RoundDriver(server, clients)
    round_, replies = Round.ADVERTISE_KEYS, driver.start()
    seen = []
    assert server.collecting is Round.ADVERTISE_KEYS
    assert not server.finished
    while not server.finished:
        round_, replies = driver.step(round_, replies)
        seen.append(server.collecting)
    assert seen == [*steps, None]
    assert server.phase is P.DONE


def test_a_client_silent_in_round_0_is_dropped_in_advertise_keys() -> None:
    server, clients = _round("semi-honest")
    run_round(server, clients, Schedule({2: Round.ADVERTISE_KEYS}))
    round_, reason, _detail = server.dropped()[2]
    assert round_ is Round.ADVERTISE_KEYS
    assert reason is DropReason.NO_RESPONSE


def _reachable(root: object) -> list[object]:
    """Every object reachable from ``root`` through attributes and containers."""
    seen: set[int] = set()
    out: list[object] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, np.ndarray):
            stack.extend(vars(obj).values())
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
    return out


@pytest.mark.parametrize("mode", ["semi-honest", "malicious"])
@pytest.mark.parametrize("phase", [P.DONE, P.ABORTED])
def test_terminal_states_hold_no_client_secrets(mode: Mode, phase: ServerPhase) -> None:
    server = _server_in(mode, phase)
    state = server._state  # the state object itself: what it still references
    assert state.phase is phase
    held = _reachable(state)
    assert not [o for o in held if isinstance(o, Share)]
    assert not [o for o in held if isinstance(o, bytes) and len(o) == CIPHERTEXT_BYTES]
    arrays = [o for o in held if isinstance(o, np.ndarray)]
    if phase is P.ABORTED:
        assert not arrays  # not even the masked running sum
    else:
        assert [a is server.result.total for a in arrays] == [True]


def test_a_failing_step_leaves_the_state_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """The facade swaps the state only when a step succeeded: a bug inside a step leaves the
    session where it was (and is not taken for a client's fault or an abort)."""
    server = _server_in("semi-honest", P.COLLECT_UNMASK)
    replies = {}
    for msg in _messages("semi-honest").values():
        if isinstance(msg, UnmaskResponse):
            replies[ME] = msg
    server.receive(replies[ME])

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug in reconstruction")

    monkeypatch.setattr(r4_unmask, "reconstruct_all", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        server.advance()
    assert server.phase is P.COLLECT_UNMASK
    assert server.abort_reason is None


class _Raising(dict[int, bytes]):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def items(self) -> Any:
        raise self.error


@pytest.mark.adversarial
def test_a_malformed_message_error_blames_the_sender() -> None:
    server = _server_in("semi-honest", P.COLLECT_UNMASK)
    good = _messages("semi-honest")[UnmaskResponse]
    assert isinstance(good, UnmaskResponse)
    bad = UnmaskResponse(
        good.session_id, ME, _Raising(MalformedMessageError("share map is not a map")), {}
    )
    server.receive(bad)
    record = server.clients[ME]
    assert record.reason is DropReason.MALFORMED
    assert record.detail == "malformed message: share map is not a map"


def test_a_library_bug_in_a_handler_is_not_blamed_on_the_sender() -> None:
    server = _server_in("semi-honest", P.COLLECT_UNMASK)
    good = _messages("semi-honest")[UnmaskResponse]
    assert isinstance(good, UnmaskResponse)
    bad = UnmaskResponse(good.session_id, ME, _Raising(RuntimeError("library bug")), {})
    with pytest.raises(RuntimeError, match="library bug"):
        server.receive(bad)
    assert server.clients[ME].active
