"""Client-side checks on what the server sends: abort with a reason, never raise, never leak."""

from __future__ import annotations

import dataclasses
import enum
from types import ModuleType

import numpy as np
import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.shamir import Share
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigError, LocalProtocolError
from secagg.protocol.client.context import HeldShares
from secagg.protocol.client.session import ClientSession
from secagg.protocol.client.state import ClientState
from secagg.protocol.messages import (
    Abort,
    KeysBroadcast,
    PublicKeys,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.protocol.server.state import ServerPhase
from secagg.reasons import AbortReason
from tests.protocol.conftest import Harness, make_harness
from tests.protocol.malicious_server import MaliciousServer


def test_input_validation() -> None:
    h = make_harness(4, 5, 8)
    from secagg.protocol.client.session import ClientSession

    with pytest.raises(ConfigError, match="length 5"):
        ClientSession(h.config, 1, np.zeros(4, dtype=np.uint8))
    with pytest.raises(ConfigError, match="integers"):
        ClientSession(h.config, 1, np.zeros(5))
    with pytest.raises(ConfigError, match=r"0\.\.2\^8-1"):
        ClientSession(h.config, 1, np.full(5, 256))
    with pytest.raises(ConfigError, match="index"):
        ClientSession(h.config, 9, np.zeros(5, dtype=np.uint8))


def test_misuse_raises_local_protocol_error() -> None:
    h = make_harness(4, 5, 8)
    c = h.clients[1]
    with pytest.raises(LocalProtocolError):
        c.receive(KeysBroadcast(h.config.session_id, {}))
    c.start()
    with pytest.raises(LocalProtocolError):
        c.start()


def test_wrong_session_aborts() -> None:
    h = make_harness(4, 5, 8)
    c = h.clients[1]
    c.start()
    reply = c.receive(KeysBroadcast(bytes(32), {}))
    assert isinstance(reply, Abort)
    assert reply.reason == AbortReason.WRONG_SESSION
    assert c.state is ClientState.ABORTED


def test_unexpected_message_aborts() -> None:
    h = make_harness(4, 5, 8)
    c = h.clients[1]
    c.start()
    reply = c.receive(SharesDelivery(h.config.session_id, {}))
    assert isinstance(reply, Abort)
    assert reply.reason == AbortReason.UNEXPECTED_MESSAGE


def test_substituted_own_keys_abort() -> None:
    h = make_harness(4, 5, 8)
    for c in h.clients.values():
        h.server.receive(c.start())
    out = h.server.advance()
    msg = out[1]
    assert isinstance(msg, KeysBroadcast)
    keys = dict(msg.keys)
    keys[1] = keys[2]
    reply = h.clients[1].receive(KeysBroadcast(msg.session_id, keys))
    assert isinstance(reply, Abort)
    assert reply.reason == AbortReason.INCONSISTENT_SETS


def test_duplicate_neighbour_keys_abort() -> None:
    h = make_harness(4, 5, 8)
    for c in h.clients.values():
        h.server.receive(c.start())
    out = h.server.advance()
    msg = out[1]
    assert isinstance(msg, KeysBroadcast)
    keys = dict(msg.keys)
    keys[3] = PublicKeys(keys[2].enc_public, keys[3].mask_public)
    reply = h.clients[1].receive(KeysBroadcast(msg.session_id, keys))
    assert isinstance(reply, Abort)
    assert reply.reason == AbortReason.DUPLICATE_KEY


def test_too_few_neighbours_abort() -> None:
    h = make_harness(6, 5, 8)  # t = 4
    for c in h.clients.values():
        h.server.receive(c.start())
    msg = h.server.advance()[1]
    assert isinstance(msg, KeysBroadcast)
    keep = {i: k for i, k in msg.keys.items() if i in (1, 2)}
    reply = h.clients[1].receive(KeysBroadcast(msg.session_id, keep))
    assert isinstance(reply, Abort)
    assert reply.reason == AbortReason.TOO_FEW_NEIGHBOURS


def _drive_to_unmask(h: Harness, skip_shares: int, skip_masked: int) -> UnmaskRequest:
    """Run rounds 0-2 honestly, with one client silent in round 1 and one in round 2."""
    for c in h.clients.values():
        h.server.receive(c.start())
    for silent in (skip_shares, skip_masked):
        out = h.server.advance()
        for i, m in out.items():
            reply = h.clients[i].receive(m)
            if i != silent:
                h.server.receive(reply)  # type: ignore[arg-type]
    request = h.server.advance()[1]
    assert isinstance(request, UnmaskRequest)
    return request


@pytest.mark.parametrize("edit", ["drop-self", "unsorted", "resurrect", "too-few", "out-of-range"])
def test_bad_survivor_sets_abort_without_revealing(edit: str) -> None:
    h = make_harness(8, 5, 8)  # t = 5
    honest = _drive_to_unmask(h, skip_shares=6, skip_masked=7)
    assert 6 not in honest.survivors
    assert 7 not in honest.survivors
    survivors = list(honest.survivors)
    if edit == "drop-self":
        survivors.remove(1)
    elif edit == "unsorted":
        survivors.reverse()
    elif edit == "resurrect":  # 6 never shared its keys: it cannot have survived
        survivors = sorted([*survivors, 6])
    elif edit == "too-few":
        survivors = [1, 2]
    elif edit == "out-of-range":
        survivors = [0, *survivors]
    reply = h.clients[1].receive(dataclasses.replace(honest, survivors=tuple(survivors)))
    assert isinstance(reply, Abort), edit
    assert h.clients[1].state is ClientState.ABORTED


def test_client_reveals_one_kind_per_neighbour_and_answers_once() -> None:
    h = make_harness(6, 5, 8)
    request = _drive_to_unmask(h, skip_shares=0, skip_masked=6)
    reply = h.clients[1].receive(request)
    assert isinstance(reply, UnmaskResponse)
    assert set(reply.self_mask_shares) == {1, 2, 3, 4, 5}
    assert set(reply.key_shares) == {6}
    assert not set(reply.self_mask_shares) & set(reply.key_shares)
    # Asking again, now claiming 6 survived, cannot extract its self-mask share too.
    again = dataclasses.replace(request, survivors=(1, 2, 3, 4, 5, 6))
    second = h.clients[1].receive(again)
    assert isinstance(second, Abort)
    assert second.reason == AbortReason.BOTH_SHARES_REQUESTED
    assert h.server.phase is ServerPhase.COLLECT_UNMASK


@pytest.mark.parametrize("junk", ["text", 5, None, PublicKeys(b"x", b"y")])
def test_malformed_server_message_aborts_instead_of_raising(junk: object) -> None:
    h = make_harness(4, 5, 8)
    for c in h.clients.values():
        h.server.receive(c.start())
    msg = h.server.advance()[1]
    assert isinstance(msg, KeysBroadcast)
    keys = dict(msg.keys)
    keys[2] = junk  # type: ignore[assignment]
    reply = h.clients[1].receive(KeysBroadcast(msg.session_id, keys))
    assert isinstance(reply, Abort)
    assert h.clients[1].state is ClientState.ABORTED


def _reachable(root: object) -> list[object]:
    """Every object reachable from ``root`` through attributes, slots and containers."""
    seen: set[int] = set()
    out: list[object] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | ModuleType):
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, bytes | str | int | float | np.ndarray | enum.Enum) or obj is None:
            continue
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            stack += list(obj)
        else:
            stack += list(getattr(obj, "__dict__", {}).values())
            for klass in type(obj).__mro__:
                for name in getattr(klass, "__slots__", ()):
                    if hasattr(obj, name):
                        stack.append(getattr(obj, name))
    return out


SECRET_TYPES = (X25519KeyPair, SigningKey, Share, HeldShares, np.ndarray, DeterministicRandom)


def _assert_holds_no_secrets(c: ClientSession) -> None:
    """No key pair, identity key, seed, share, share key, input vector or random source is
    reachable from the session object (the walk covers vars() and slots, recursively)."""
    found = [type(o).__name__ for o in _reachable(c) if isinstance(o, SECRET_TYPES)]
    assert not found, f"a terminal session still holds {found}"
    raw = [o for o in _reachable(c) if isinstance(o, bytes) and len(o) == 32]
    cfg = c.config  # public: the round's ids and digests, and the graph seed
    public = {cfg.session_id, cfg.graph_seed, cfg.context_digest, cfg.spec_digest, c.graph_seed}
    assert set(raw) <= public, "a 32-byte value other than the round's public ones is held"


def test_completed_semi_honest_round_leaves_no_secrets_in_clients() -> None:
    h = make_harness(5, 4, 16)
    h.run()
    assert h.server.phase is ServerPhase.DONE
    for c in h.clients.values():
        assert c.state is ClientState.DONE
        _assert_holds_no_secrets(c)


def test_completed_malicious_round_leaves_no_secrets_in_clients() -> None:
    m = MaliciousServer(6)
    m.finish_honestly(m.start())
    assert m.server.phase is ServerPhase.DONE
    for c in m.clients.values():
        assert c.state is ClientState.DONE
        _assert_holds_no_secrets(c)


def test_aborted_client_holds_no_secrets() -> None:
    h = make_harness(4, 5, 8)
    c = h.clients[1]
    c.start()
    assert any(isinstance(o, X25519KeyPair) for o in _reachable(c))  # the walk does see keys
    c.receive(KeysBroadcast(bytes(32), {}))  # wrong session
    assert c.state is ClientState.ABORTED
    _assert_holds_no_secrets(c)


def test_client_holds_no_secret_once_it_revealed_its_shares() -> None:
    """The state after the unmask reply needs nothing secret, so it holds nothing secret: a
    crash dump taken while the client waits for the result reveals nothing."""
    h = make_harness(6, 5, 8)
    request = _drive_to_unmask(h, skip_shares=0, skip_masked=6)
    client = h.clients[1]
    assert any(isinstance(o, HeldShares) for o in _reachable(client))  # until the reply
    client.receive(request)
    assert client.state is ClientState.AWAIT_RESULT
    _assert_holds_no_secrets(client)
