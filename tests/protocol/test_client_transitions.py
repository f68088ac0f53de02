"""The client's whole (state, server message) transition table, asserted cell by cell.

Every state of an honest round (saved bytes of client 1, one per state, plus an aborted one)
gets every kind of server message: the honest message where the state expects it, a genuine
one from another step elsewhere, a server Abort, and a message for another session. Each cell
is a legal transition (``-> state``), a client abort with a specific reason (``abort:reason``),
or a caller error (``misuse``: a session that was not started or has ended cannot receive).
Nothing else may happen: any other exception fails the test. A change to the table is a visible
diff of TABLE below.
"""

from __future__ import annotations

import pytest

from secagg.errors import LocalProtocolError
from secagg.graph import Mode
from secagg.protocol.client.session import ClientSession
from secagg.protocol.messages import (
    Abort,
    CommitmentsBroadcast,
    ConsistencyRequest,
    KeysBroadcast,
    ServerMessage,
)
from tests.protocol.client_rounds import Reloading, RestoreArgs, make_round

KINDS = (
    "CommitmentsBroadcast",
    "KeysBroadcast",
    "SharesDelivery",
    "ConsistencyRequest",
    "UnmaskRequest",
    "RoundComplete",
    "Abort",
    "other-session",
)
U = "abort:unexpected-message"
SA = "abort:server-aborted"
WS = "abort:wrong-session"
M = "misuse"
NEW = (M, M, M, M, M, M, SA, M)
ENDED = (M,) * 8
RESULT = (U, U, U, U, "abort:both-shares-requested", "-> done", SA, WS)
# (mode, state) -> the outcome of each message kind, in the order of KINDS.
TABLE: dict[tuple[Mode, str], tuple[str, ...]] = {
    ("semi-honest", "new"): NEW,
    ("semi-honest", "await-keys"): (U, "-> await-shares", U, U, U, U, SA, WS),
    ("semi-honest", "await-shares"): (U, U, "-> await-unmask", U, U, U, SA, WS),
    ("semi-honest", "await-unmask"): (U, U, U, U, "-> await-result", U, SA, WS),
    ("semi-honest", "await-result"): RESULT,
    ("semi-honest", "done"): ENDED,
    ("semi-honest", "aborted"): ENDED,
    ("malicious", "new"): NEW,
    ("malicious", "await-commitments"): ("-> await-keys", U, U, U, U, U, SA, WS),
    ("malicious", "await-keys"): (U, "-> await-shares", U, U, U, U, SA, WS),
    ("malicious", "await-shares"): (U, U, "-> await-consistency", U, U, U, SA, WS),
    ("malicious", "await-consistency"): (U, U, U, "-> await-unmask", U, U, SA, WS),
    ("malicious", "await-unmask"): (U, U, U, U, "-> await-result", U, SA, WS),
    ("malicious", "await-result"): RESULT,
    ("malicious", "done"): ENDED,
    ("malicious", "aborted"): ENDED,
}
# Which state class each step of a chain is: the mode is the chain, not a flag.
CHAINS: dict[Mode, tuple[str, ...]] = {
    "semi-honest": ("New", "AwaitKeys", "AwaitShares", "AwaitUnmask", "AwaitResult", "Done"),
    "malicious": (
        "NewSigned",
        "AwaitCommitments",
        "AwaitSignedKeys",
        "AwaitSharesSigned",
        "AwaitConsistency",
        "AwaitSignedUnmask",
        "AwaitResult",
        "Done",
    ),
}


def _honest_run(mode: Mode) -> tuple[list[bytes], dict[str, ServerMessage], RestoreArgs]:
    """Client 1's bytes in each state of an honest round, and one message of every kind."""
    h, args = make_round(mode, 6)
    recorder = Reloading(h.clients[1], args[1], replace=False)
    h.clients[1] = recorder  # type: ignore[assignment]
    h.run()
    sid = h.config.session_id
    probes: dict[str, ServerMessage] = {
        # The two malicious-only kinds, for semi-honest sessions to refuse.
        "CommitmentsBroadcast": CommitmentsBroadcast(sid, {1: bytes(32)}),
        "ConsistencyRequest": ConsistencyRequest(sid, tuple(range(1, 7))),
    }
    probes |= {type(m).__name__: m for _r, i, m in h.log if i == 1}
    probes["Abort"] = Abort(sid, 0, "too-few-clients", "the server gives up")
    probes["other-session"] = KeysBroadcast(bytes(32), {})
    return recorder.blobs, probes, args[1]


def _outcome(session: ClientSession, msg: ServerMessage) -> str:
    try:
        session.receive(msg)
    except LocalProtocolError:
        return M
    if session.abort_reason is not None:
        return f"abort:{session.abort_reason.value}"
    return f"-> {session.state.value}"


@pytest.mark.parametrize("mode", ["semi-honest", "malicious"])
def test_every_state_answers_every_message_as_the_table_says(mode: Mode) -> None:
    blobs, probes, args = _honest_run(mode)
    aborting = ClientSession.restore(blobs[1], **args)
    aborting.receive(probes["other-session"])
    snapshots = [*blobs, aborting.save()]
    classes = [type(ClientSession.restore(b, **args)._state).__name__ for b in blobs]
    assert tuple(classes) == CHAINS[mode]
    got: dict[tuple[Mode, str], tuple[str, ...]] = {}
    for blob in snapshots:
        state = ClientSession.restore(blob, **args).state.value
        got[(mode, state)] = tuple(
            _outcome(ClientSession.restore(blob, **args), probes[kind]) for kind in KINDS
        )
    assert got == {key: row for key, row in TABLE.items() if key[0] == mode}
