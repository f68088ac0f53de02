"""ClientSession.save()/restore(): a round goes on unchanged when every client lives only as
bytes between messages; restored sessions refuse replays; bad bytes raise the typed error."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.crypto.entropy import DeterministicRandom
from secagg.errors import LocalProtocolError, SavedSessionError
from secagg.graph import Mode, NeighbourGraph
from secagg.protocol.client import saved
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.messages import Abort, Round, RoundComplete, ServerMessage
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason
from tests.protocol.client_rounds import WEAK, Reloading, make_round, outcome

MODES: tuple[Mode, ...] = ("semi-honest", "malicious")
ROUNDS = list(Round)


def _reloaded_round(mode: Mode, n: int, seed: int, stops: dict[int, Round]) -> tuple:
    h, args = make_round(mode, n, seed=seed, stops=stops)
    h.clients = {i: Reloading(c, args[i]) for i, c in h.clients.items()}  # type: ignore[misc]
    h.run()
    return h, outcome(h)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(5, 7),
    seed=st.integers(0, 2**16),
    stops=st.dictionaries(st.integers(1, 7), st.sampled_from(ROUNDS), max_size=3),
)
def test_round_with_every_client_saved_and_restored_after_every_message_ends_the_same(
    mode: Mode, n: int, seed: int, stops: dict[int, Round]
) -> None:
    stops = {i: r for i, r in stops.items() if i <= n}
    live, _ = make_round(mode, n, seed=seed, stops=stops)
    live.run()
    reloaded, ending = _reloaded_round(mode, n, seed, stops)
    assert ending == outcome(live)
    if reloaded.server.phase is ServerPhase.DONE:
        result = reloaded.server.result
        np.testing.assert_array_equal(result.total, reloaded.plain_sum(result.included))


@pytest.mark.parametrize("mode", MODES)
def test_dropouts_at_every_step_complete_with_reloaded_clients(mode: Mode) -> None:
    # Complete graphs with one drop at each step after round 0: n - 3 clients still reach t
    # (semi-honest n = 9, t = 5; malicious n = 12, t = 9).
    second = Round.MASKED_INPUT if mode == "semi-honest" else Round.CONSISTENCY_CHECK
    stops = {2: Round.SHARE_KEYS, 4: second, 6: Round.UNMASKING}
    h, ending = _reloaded_round(mode, 9 if mode == "semi-honest" else 12, 3, stops)
    assert h.server.phase is ServerPhase.DONE, ending
    included = h.server.result.included
    assert 2 not in included
    assert 6 in included  # it sent its masked input (and signed U3): it is in the sum
    for client in h.clients.values():
        blobs = client.blobs  # type: ignore[attr-defined]
        steps = [saved.saved_step(b) for b in blobs]
        assert steps == sorted(steps)  # the counter orders the snapshots


def _client_log(mode: Mode) -> tuple[list[ServerMessage], list[bytes], dict]:
    """Client 1 of an honest round: the server messages it got and its bytes before each."""
    h, args = make_round(mode, 6)
    client = Reloading(h.clients[1], args[1], replace=False)
    h.clients[1] = client  # type: ignore[assignment]
    h.run()
    msgs = [m for _r, i, m in h.log if i == 1]
    assert client.state is ClientState.DONE
    # blobs: [0] new, [1] after start, then one after each message.
    return msgs, client.blobs[1:], args[1]


def _fresh_at(mode: Mode, msgs: list[ServerMessage], k: int) -> ClientSession:
    """A never-saved client 1 of the same (deterministic) round, fed the first k messages."""
    h, _ = make_round(mode, 6)
    session = h.clients[1]
    session.start()
    for msg in msgs[:k]:
        session.receive(msg)
    return session


def _answer(session: ClientSession, msg: ServerMessage) -> object:
    try:
        reply = session.receive(msg)
    except LocalProtocolError:
        return "local-protocol-error"
    assert isinstance(reply, Abort)
    return session.abort_reason


@pytest.mark.parametrize("mode", MODES)
def test_restored_session_refuses_replays_like_a_live_one(mode: Mode) -> None:
    msgs, blobs, args = _client_log(mode)
    checked = 0
    for k in range(1, len(msgs) + 1):
        for j in range(k):  # replay message j after step k was taken
            restored = ClientSession.restore(blobs[k], **args)
            got = _answer(restored, msgs[j])
            assert got == _answer(_fresh_at(mode, msgs, k), msgs[j]), (k, j)
            if k < len(msgs):  # DONE refuses every message as a caller error
                assert got in (
                    AbortReason.UNEXPECTED_MESSAGE,
                    AbortReason.BOTH_SHARES_REQUESTED,
                ), (k, j)
            checked += 1
    assert checked == len(msgs) * (len(msgs) + 1) // 2


@pytest.mark.parametrize("mode", MODES)
def test_terminal_bytes_hold_no_secret_and_no_bytes_hold_the_identity(mode: Mode) -> None:
    h, args = make_round(mode, 6)
    clients = {i: Reloading(c, args[i]) for i, c in h.clients.items()}
    h.clients = clients  # type: ignore[assignment]
    # Client 3 ignores the unmask request, so the final RoundComplete finds it still holding
    # its shares: it aborts (unexpected message) from a state full of secrets.
    h.stops[3] = Round.UNMASKING
    h.run()
    assert h.server.phase is ServerPhase.DONE
    for i, client in clients.items():
        final = client.blobs[-1]
        assert client.state in (ClientState.DONE, ClientState.ABORTED)
        assert len(client.secrets) > 5  # keys, seed, shares, share keys were all seen
        leaked = [s for s in client.secrets if s in final]
        assert not leaked, f"client {i}'s final bytes hold {len(leaked)} round secrets"
        if mode == "malicious":
            seed = args[i]["identity"].seed()
            assert not any(seed in blob for blob in client.blobs)
    assert clients[3].abort_reason is AbortReason.UNEXPECTED_MESSAGE


def _blob_in_each_state(mode: Mode) -> list[bytes]:
    _msgs, blobs, _args = _client_log(mode)
    return blobs


SEMI_BLOBS = _blob_in_each_state("semi-honest")
MALICIOUS_BLOBS = _blob_in_each_state("malicious")
MALICIOUS_ARGS = make_round("malicious", 6)[1][1]


def _restore(blob: bytes, mode: Mode) -> ClientSession:
    args = MALICIOUS_ARGS if mode == "malicious" else {}
    return ClientSession.restore(blob, **args)


@pytest.mark.parametrize("mode", MODES)
def test_every_snapshot_restores_to_its_own_state_and_bytes(mode: Mode) -> None:
    blobs = MALICIOUS_BLOBS if mode == "malicious" else SEMI_BLOBS
    for blob in blobs:
        session = _restore(blob, mode)
        assert session.save() == blob  # the format is canonical: a round trip is exact
        assert session.step == ClientSession.saved_step(blob) == saved.saved_step(blob)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_truncated_or_trailing_bytes_raise_the_typed_error(mode: Mode, data: st.DataObject) -> None:
    blob = data.draw(st.sampled_from(MALICIOUS_BLOBS if mode == "malicious" else SEMI_BLOBS))
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(SavedSessionError, match=r"truncated|magic"):
        _restore(blob[:cut], mode)
    extra = data.draw(st.binary(min_size=1, max_size=40))
    with pytest.raises(SavedSessionError, match="trailing"):
        _restore(blob + extra, mode)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_garbled_bytes_raise_the_typed_error_or_restore(mode: Mode, data: st.DataObject) -> None:
    blob = bytearray(
        data.draw(st.sampled_from(MALICIOUS_BLOBS if mode == "malicious" else SEMI_BLOBS))
    )
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    try:
        session = _restore(bytes(blob), mode)
    except SavedSessionError:
        return
    assert isinstance(session.state, ClientState)  # a flipped byte inside a value still parses


@given(st.binary(max_size=200))
def test_random_bytes_raise_the_typed_error(blob: bytes) -> None:
    with pytest.raises(SavedSessionError):
        ClientSession.restore(blob)


def test_unknown_version_and_state_tag_are_refused() -> None:
    blob = SEMI_BLOBS[0]
    at = len(saved.MAGIC)
    newer = blob[:at] + bytes([saved.VERSION + 1]) + blob[at + 1 :]
    with pytest.raises(SavedSessionError, match="version 2 is not supported"):
        ClientSession.restore(newer)
    tag_at = at + 1 + 8
    unknown = blob[:tag_at] + bytes([200]) + blob[tag_at + 1 :]
    with pytest.raises(SavedSessionError, match="unknown state tag 200"):
        ClientSession.restore(unknown)
    assert struct.unpack(">Q", blob[at + 1 : tag_at])[0] == saved.saved_step(blob)


def test_restore_needs_the_hosts_identity_in_malicious_mode_only() -> None:
    live = MALICIOUS_BLOBS[1]
    with pytest.raises(SavedSessionError, match="needs identity= and registry="):
        ClientSession.restore(live)
    with pytest.raises(SavedSessionError, match="semi-honest"):
        ClientSession.restore(SEMI_BLOBS[1], **MALICIOUS_ARGS)
    # A terminal session needs nothing of the host: it holds no secret and answers nothing.
    done = ClientSession.restore(MALICIOUS_BLOBS[-1])
    assert done.state is ClientState.DONE
    assert done.included is not None


def test_restore_refuses_another_rounds_graph() -> None:
    session = ClientSession.restore(SEMI_BLOBS[1])
    wrong = NeighbourGraph(b"x" * 32, range(1, 7), 2)
    assert set(wrong.neighbours(1)) != session.neighbours
    with pytest.raises(SavedSessionError, match="not the saved session's graph"):
        ClientSession.restore(SEMI_BLOBS[1], graph=wrong)


def test_restored_session_continues_with_the_given_random_source() -> None:
    h, _ = make_round("semi-honest", 5)
    session = h.clients[2]
    blob = session.save()
    a = ClientSession.restore(blob, rng=DeterministicRandom("a"), policy=WEAK).start()
    b = ClientSession.restore(blob, rng=DeterministicRandom("b"), policy=WEAK).start()
    c = ClientSession.restore(blob, rng=DeterministicRandom("a"), policy=WEAK).start()
    assert a == c
    assert a != b


JUNK = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=8),
    st.binary(max_size=40),
    st.tuples(st.integers(-5, 2**40)),
    st.dictionaries(st.integers(-5, 9), st.binary(max_size=40), max_size=3),
)


def _probes(mode: Mode) -> list[ServerMessage]:
    h, _args = make_round(mode, 6)
    h.run()
    return [m for _r, i, m in h.log if i == 1]


SEMI_PROBES = _probes("semi-honest")
MALICIOUS_PROBES = _probes("malicious")


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_whatever_the_server_sends_the_session_still_saves_and_restores_exactly(
    mode: Mode, data: st.DataObject
) -> None:
    """A server message with one field replaced by junk (wrong type, range or shape) leaves
    the session in a state that saves and restores to the same bytes: saving never fails on
    what a server sent."""
    malicious = mode == "malicious"
    blob = data.draw(st.sampled_from((MALICIOUS_BLOBS if malicious else SEMI_BLOBS)[:-1]))
    msg = data.draw(st.sampled_from(MALICIOUS_PROBES if malicious else SEMI_PROBES))
    names = [f.name for f in dataclasses.fields(msg) if f.name != "session_id"]
    name = data.draw(st.sampled_from(names))
    msg = dataclasses.replace(msg, **{name: data.draw(JUNK)})
    session = _restore(blob, mode)
    session.receive(msg)
    after = session.save()
    assert _restore(after, mode).save() == after


def test_server_words_and_odd_final_sets_do_not_break_saving() -> None:
    blob = SEMI_BLOBS[-2]  # await-result
    sid = _restore(blob, "semi-honest").config.session_id
    odd = _restore(SEMI_BLOBS[1], "semi-honest")
    odd.receive(Abort(sid, 0, "x", "\ud800 a lone surrogate"))
    assert "\\ud800" in _restore(odd.save(), "semi-honest").abort_detail
    unsorted = _restore(blob, "semi-honest")
    unsorted.receive(RoundComplete(sid, (3, 1, 2)))
    assert _restore(unsorted.save(), "semi-honest").included == (3, 1, 2)
    too_big = _restore(blob, "semi-honest")
    too_big.receive(RoundComplete(sid, (1, 2**40)))
    assert too_big.abort_reason is AbortReason.MALFORMED
